//go:build !linux

package conn

import wgconn "golang.zx2c4.com/wireguard/conn"

// defaultInnerBind is what NewBind wraps when given none: upstream's
// default bind (StickyBind needs Linux's IP_PKTINFO handling).
func defaultInnerBind() wgconn.Bind { return wgconn.NewDefaultBind() }
