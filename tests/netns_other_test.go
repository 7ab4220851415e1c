//go:build !linux

package tests

// netnsSweepStale does nothing: network namespaces are Linux's, and so are
// the tests that make them and the daemon builds it sweeps.
func netnsSweepStale() {}
