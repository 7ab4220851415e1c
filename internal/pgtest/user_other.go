//go:build !linux

package pgtest

import (
	"errors"
	"os/exec"
)

type credential struct{}

// The tests' server runs on Linux only (it switches users with a Linux
// credential); elsewhere they skip.
func supported() error { return errors.New("pgtest runs PostgreSQL on Linux only") }

func serverUser() (*credential, error) { return nil, supported() }

func (s *Server) chown(...string) error { return supported() }

func (s *Server) asServerUser(*exec.Cmd) {}
