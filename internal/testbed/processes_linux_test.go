package testbed

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestDescendantsOfFindsGrandchildrenInSessionsOfTheirOwn(t *testing.T) {
	// sh starts a sleep of its own and a setsid'd sh, whose sleep is the grandchild.
	cmd := exec.Command("sh", "-c", "sleep 60 & setsid sh -c 'sleep 61; :' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range DescendantsOf(cmd.Process.Pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	var got []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = DescendantsOf(cmd.Process.Pid); len(got) == 3 && slices.Contains(commandLines(got), "sleep 61") {
			break
		}
	}
	want := []string{"sh -c sleep 61; :", "sleep 60", "sleep 61"}
	if lines := commandLines(got); !slices.Equal(lines, want) {
		t.Fatalf("descendants of sh (pid %d): %q, want %q", cmd.Process.Pid, lines, want)
	}
	if slices.Contains(got, os.Getpid()) || slices.Contains(got, cmd.Process.Pid) {
		t.Fatalf("descendants of %d include the test or sh itself: %v", cmd.Process.Pid, got)
	}
}

func commandLines(pids []int) []string {
	var lines []string
	for _, pid := range pids {
		lines = append(lines, CommandLine(pid))
	}
	slices.Sort(lines)
	return lines
}
