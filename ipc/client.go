package ipc

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wghooks/wghooks/uapi"
)

// Client speaks the UAPI text protocol to a daemon's socket. It is what
// the control CLI and the tests use; `wg` and wgctrl are the others.
type Client struct {
	c net.Conn
	r *bufio.Reader
}

// dialTimeout bounds connecting to a daemon's socket.
const dialTimeout = 5 * time.Second

// Dial connects to iface's socket in dir ("" means DefaultDir).
func Dial(dir, iface string) (*Client, error) {
	path := SocketPath(dir, iface)
	var c net.Conn
	var err error
	if dir == "" || dir == DefaultDir {
		c, err = dialDefault(iface, dialTimeout)
	} else {
		c, err = net.DialTimeout("unix", path, dialTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %q: %w", path, err)
	}
	return &Client{c: c, r: bufio.NewReader(c)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Get returns the key=value lines of a get reply, errno line excluded.
func (c *Client) Get() ([]uapi.Line, error) {
	if _, err := c.c.Write([]byte("get=1\n\n")); err != nil {
		return nil, fmt.Errorf("failed to send get: %w", err)
	}
	return c.reply()
}

// Set sends one set transaction (lines without the final blank line) and
// returns an error carrying the errno when the daemon refused it.
func (c *Client) Set(lines ...string) error {
	var b strings.Builder
	b.WriteString("set=1\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := c.c.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("failed to send set: %w", err)
	}
	_, err := c.reply()
	return err
}

// reply reads lines up to the blank line and turns errno into an error.
func (c *Client) reply() ([]uapi.Line, error) {
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lines []uapi.Line
	for {
		s, err := c.r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("failed to read reply: %w", err)
		}
		s = strings.TrimSuffix(s, "\n")
		if s == "" {
			return nil, fmt.Errorf("failed to read reply: no errno line")
		}
		k, v, _ := strings.Cut(s, "=")
		if k != "errno" {
			lines = append(lines, uapi.Line{Key: k, Value: v})
			continue
		}
		// errno is last, followed by a blank line.
		if _, err := c.r.ReadString('\n'); err != nil {
			return nil, fmt.Errorf("failed to read reply: %w", err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("failed to read reply: bad errno %q", v)
		}
		if n != 0 {
			return lines, uapi.Errorf(n, "daemon refused the operation (errno=%d)", n)
		}
		return lines, nil
	}
}
