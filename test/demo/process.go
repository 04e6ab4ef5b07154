package demo

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ListeningPorts are the loopback ports named in a command line: 127.0.0.1:PORT and
// localhost:PORT anywhere, and the values of --secure-port, --webhook-port and -p (the last one
// of each, as flag parsing takes the last).
func ListeningPorts(cmdline string) []int {
	var out []int
	last := map[string]int{}
	fields := strings.Fields(cmdline)
	for i, f := range fields {
		for _, prefix := range []string{"127.0.0.1:", "localhost:"} {
			for rest := f; ; {
				j := strings.Index(rest, prefix)
				if j < 0 {
					break
				}
				rest = rest[j+len(prefix):]
				k := 0
				for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
					k++
				}
				if n, err := strconv.Atoi(rest[:k]); err == nil && n > 0 {
					out = append(out, n)
				}
			}
		}
		for _, flag := range []string{"--secure-port=", "--webhook-port="} {
			if v, ok := strings.CutPrefix(f, flag); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					last[flag] = n
				}
			}
		}
		if f == "-p" && i+1 < len(fields) {
			if n, err := strconv.Atoi(fields[i+1]); err == nil && n > 0 {
				last[f] = n
			}
		}
	}
	for _, flag := range []string{"--secure-port=", "--webhook-port=", "-p"} {
		if n, ok := last[flag]; ok {
			out = append(out, n)
		}
	}
	return out
}

// PortFree reports whether nothing accepts connections on 127.0.0.1:port.
func PortFree(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	_ = conn.Close()
	return false
}
