// Package pgtest runs a real PostgreSQL server for tests, benchmarks and
// the fleet demo: initdb into a temporary directory, postgres on a
// private unix socket directory (no TCP port to collide on), stopped at
// cleanup. As root it runs the server as the postgres user (the server
// refuses root), otherwise as the current user. No mocked database.
//
// Without the PostgreSQL binaries a test skips saying why, and fails
// when CI=true (CI must run every real part).
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Server is one PostgreSQL server in a temporary directory.
type Server struct {
	dir     string // holds data/, sock/ and the log
	bin     string // directory of initdb, pg_ctl, postgres
	running bool
	cred    *credential // nil: run as this process's user
}

// Port is the number in the socket's name (.s.PGSQL.PORT); the socket is
// in a private directory, so it never collides.
const Port = 5432

// Bin finds the directory of the PostgreSQL server binaries:
// $PG_BIN, then Debian's /usr/lib/postgresql/*/bin (newest), then PATH.
func Bin() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(ms) > 0 {
		best, bestV := "", -1
		for _, m := range ms {
			v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
			if v > bestV {
				best, bestV = filepath.Dir(m), v
			}
		}
		return best, nil
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install Debian's postgresql or set PG_BIN")
	}
	return filepath.Dir(p), nil
}

// Start initializes and starts a server. The caller stops it (Close).
func Start() (*Server, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wghooks-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if err := s.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// New starts a server for tb and stops it at cleanup. It skips tb when
// the binaries are missing, unless CI=true (then it fails).
func New(tb testing.TB) *Server {
	tb.Helper()
	if _, err := Bin(); err != nil {
		Missing(tb, err.Error())
	}
	if err := supported(); err != nil {
		Missing(tb, err.Error())
	}
	s, err := Start()
	if err != nil {
		tb.Fatalf("failed to start PostgreSQL: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Missing skips tb because a real part is missing, or fails it when
// CI=true.
func Missing(tb testing.TB, why string) {
	tb.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("CI=true and a real part is missing: %s", why)
	}
	tb.Skipf("skipping: %s", why)
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// SocketDir is the directory of the server's unix socket.
func (s *Server) SocketDir() string { return filepath.Join(s.dir, "sock") }

// LogFile is the server's log.
func (s *Server) LogFile() string { return filepath.Join(s.dir, "server.log") }

// URL is the connection URL of database db as the superuser postgres.
func (s *Server) URL(db string) string {
	q := url.Values{"host": {s.SocketDir()}, "port": {strconv.Itoa(Port)}, "user": {"postgres"}}
	return (&url.URL{Scheme: "postgres", Path: "/" + db, RawQuery: q.Encode()}).String()
}

func (s *Server) init() error {
	cred, err := serverUser()
	if err != nil {
		return err
	}
	s.cred = cred
	// The server's user must reach its directories.
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{s.data(), s.SocketDir()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if err := s.chown(s.data(), s.SocketDir()); err != nil {
		return err
	}
	// The log is written by pg_ctl as the server's user.
	if err := os.WriteFile(s.LogFile(), nil, 0o600); err != nil {
		return err
	}
	if err := s.chown(s.LogFile()); err != nil {
		return err
	}
	return s.run("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
}

// Start starts the server (again, after Stop or Crash) and waits until
// it accepts connections.
func (s *Server) Start() error {
	if s.running {
		return nil
	}
	// fsync off: a test's data need not survive the machine, only the
	// server (Crash kills processes; written WAL is in the kernel). Never
	// synchronous_commit off: a crash would lose acknowledged commits.
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses= -c fsync=off -c max_connections=200",
		s.SocketDir(), Port)
	if err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data(), "-l", s.LogFile(), "-o", opts); err != nil {
		return err
	}
	s.running = true
	return nil
}

// Crash stops the server at once, as a power cut would (pg_ctl stop -m
// immediate): connections drop without a goodbye.
func (s *Server) Crash() error {
	if !s.running {
		return nil
	}
	if err := s.run("pg_ctl", "stop", "-w", "-t", "60", "-D", s.data(), "-m", "immediate"); err != nil {
		return err
	}
	s.running = false
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Crash()
	os.RemoveAll(s.dir)
}

// run runs one of the server's binaries as the server's user.
func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	s.asServerUser(cmd)
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(s.LogFile())
		return fmt.Errorf("failed to run %s: %w\n%s\n%s", name, err, out.Bytes(), tail(log, 2000))
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
