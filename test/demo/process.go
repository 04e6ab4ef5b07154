package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/binproc"
)

const (
	readyTimeout = 60 * time.Second
	stopGrace    = 15 * time.Second
	pollInterval = 100 * time.Millisecond
)

// process is one of ec2guard's binaries running for the demo, in a process group of its own so
// that stopping it stops everything it started.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startProcess runs bin with args, its output appended to logPath. The environment is the
// caller's without AWS configuration, so the binary can only reach the emulator it is given.
func startProcess(name, bin, logPath string, args []string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: opening its log: %w", name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	p := &process{name: name, logPath: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = withoutAWSEnv()
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// withoutAWSEnv is this process's environment minus everything that could point an AWS SDK at
// real AWS or at a kubeconfig other than the one on the command line (binproc.Env).
func withoutAWSEnv() []string { return binproc.Env() }

// waitReady polls url (a /readyz endpoint) until it answers 200, the process exits or ctx ends.
func (p *process) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s readiness: %w", p.name, err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log: %s", p.name, p.waitErr, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s (last: %s; log: %s): %w", p.name, url, last, p.logPath, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopGrace, and waits for the
// process. It reports an unclean exit.
func (p *process) stop() error {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.exited:
		return fmt.Errorf("%s had exited before the demo ended: %v (log: %s)", p.name, p.waitErr, p.logPath)
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
		// Anything left in the group (there should be nothing) goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if p.waitErr != nil {
			return fmt.Errorf("%s did not exit cleanly on SIGTERM: %v (log: %s)", p.name, p.waitErr, p.logPath)
		}
		return nil
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s ignored SIGTERM for %s and was killed (log: %s)", p.name, stopGrace, p.logPath)
	}
}

// freeAddr returns 127.0.0.1:PORT with a port nobody listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("picking a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("picking a free loopback port: %w", err)
	}
	return addr, nil
}

// Descendants returns the ids of the running processes descended from pid (children,
// grandchildren, ...), read from /proc.
func Descendants(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, ok := parentOf(id)
		if ok {
			children[ppid] = append(children[ppid], id)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// parentOf reads the parent id of a process from /proc/PID/stat ("pid (comm) state ppid ...";
// comm may hold spaces and parentheses, so the fields after the last ')' are used).
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// Alive reports whether a process with id pid exists (and is not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	return s[i+2] != 'Z'
}

// CommandLine is the command line of a running process, arguments separated by spaces.
func CommandLine(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

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
