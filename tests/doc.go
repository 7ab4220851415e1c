// Package tests holds wghooks' integration tests: devices talking to each
// other in one process over netstack or loopback UDP, against plain
// upstream wireguard-go, and against Debian's wireguard-go and wg tools
// in network namespaces. It has no non-test code beyond this comment.
package tests
