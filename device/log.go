package device

import (
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/hooks"
)

// logger is the device's one adapter between wghooks' Logf functions and
// upstream's *wgdevice.Logger.
type logger struct {
	verbosef hooks.Logf
	errorf   hooks.Logf
}

func newLogger(cfg *Config, prefix string) logger {
	wrap := func(f hooks.Logf) hooks.Logf {
		if f == nil {
			return nil
		}
		return func(format string, args ...any) { f(prefix+format, args...) }
	}
	return logger{verbosef: wrap(cfg.Verbosef), errorf: wrap(cfg.Errorf)}
}

func (l logger) Verbosef(format string, args ...any) { l.verbosef.Printf(format, args...) }
func (l logger) Errorf(format string, args ...any)   { l.errorf.Printf(format, args...) }

// upstream returns the same sinks in upstream's shape.
func (l logger) upstream() *wgdevice.Logger {
	lg := &wgdevice.Logger{Verbosef: wgdevice.DiscardLogf, Errorf: wgdevice.DiscardLogf}
	if l.verbosef != nil {
		lg.Verbosef = l.verbosef
	}
	if l.errorf != nil {
		lg.Errorf = l.errorf
	}
	return lg
}
