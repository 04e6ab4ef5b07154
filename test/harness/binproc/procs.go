package binproc

import (
	"fmt"
	"strings"

	"github.com/prometheus/procfs"
)

// Descendants returns the ids of the running processes descended from pid (children,
// grandchildren, ...), read from /proc: what a test checks is gone after a stop.
func Descendants(pid int) ([]int, error) {
	all, err := procfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	children := map[int][]int{}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			continue // it has exited meanwhile
		}
		children[st.PPID] = append(children[st.PPID], p.PID)
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

// Alive reports whether a process with id pid exists and is not a zombie.
func Alive(pid int) bool {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return false
	}
	st, err := p.Stat()
	return err == nil && st.State != "Z"
}

// CommandLine is the command line of a running process, arguments separated by spaces ("" when
// it has gone).
func CommandLine(pid int) string {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return ""
	}
	args, err := p.CmdLine()
	if err != nil {
		return ""
	}
	return strings.Join(args, " ")
}
