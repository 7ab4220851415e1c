package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

type credential struct{ uid, gid uint32 }

func supported() error { return nil }

// serverUser is the postgres user when this process is root (the server
// refuses to run as root), else nil: the current user.
func serverUser() (*credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &credential{uint32(uid), uint32(gid)}, nil
}

func (s *Server) chown(paths ...string) error {
	if s.cred == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(s.cred.uid), int(s.cred.gid)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) asServerUser(cmd *exec.Cmd) {
	if s.cred == nil {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.cred.uid, Gid: s.cred.gid}}
	cmd.Env = append(os.Environ(), "HOME="+s.dir)
}
