package binproc

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestDescendantsOfNothing(t *testing.T) {
	// A process id that cannot exist has no descendants and is not alive.
	got, err := Descendants(1 << 30)
	if err != nil || len(got) != 0 {
		t.Errorf("Descendants = %v, %v", got, err)
	}
	if Alive(1<<30) || CommandLine(1<<30) != "" {
		t.Error("a process that does not exist is alive or has a command line")
	}
}

func TestDescendantsAliveCommandLine(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	got, err := Descendants(os.Getpid())
	if err != nil || !slices.Contains(got, pid) {
		t.Fatalf("Descendants of the test = %v, %v; want %d among them", got, err, pid)
	}
	if !Alive(pid) || !strings.HasSuffix(CommandLine(pid), "sleep 60") {
		t.Errorf("Alive(%d) = %t, CommandLine = %q", pid, Alive(pid), CommandLine(pid))
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if Alive(pid) {
		t.Errorf("%d is alive after it was killed and waited for", pid)
	}
}
