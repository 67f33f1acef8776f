package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/example/custom-nginx/internal/testbed"
)

func requireMake(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		testbed.Unavailable(t, "no make on this machine", "install make (Debian: apt-get install make)")
	}
}

// TestMakeUpNamesWhatIsMissing runs `make up` the way a newcomer would on a machine
// without the Pulumi CLI: it must stop before touching anything and say what to install.
func TestMakeUpNamesWhatIsMissing(t *testing.T) {
	requireMake(t)
	_, statErr := os.Stat("../.state")
	hadState := statErr == nil
	for _, target := range []string{"up", "destroy", "env"} {
		cmd := exec.Command("make", "-s", target)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "PULUMI=pulumi-not-installed-here")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("make %s succeeded without a Pulumi CLI:\n%s", target, out)
		}
		for _, want := range []string{"make " + target + ": the Pulumi CLI", "is not installed", "https://www.pulumi.com/docs/"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("make %s output does not say %q:\n%s", target, want, out)
			}
		}
	}
	if _, err := os.Stat("../.state"); err == nil && !hadState {
		t.Error("make created .state/ although it stopped for a missing CLI")
	}
}

// TestUnitLayerIgnoresDockerHost runs `make unit` (the layers that need no engine) with
// DOCKER_HOST set as rootless Docker, colima or podman set it: the unit tests pin the
// engine they mean and must pass whatever the developer's environment says.
func TestUnitLayerIgnoresDockerHost(t *testing.T) {
	offMachineEngine.join(t)
	requireMake(t)
	for _, dockerHost := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:1"} {
		cmd := exec.Command("make", "-s", "unit")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+dockerHost)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("DOCKER_HOST=%s make unit: %v\n%s", dockerHost, err, out)
		}
	}
}

// TestMakeUpRecoversFromAKilledCLI: a pulumi killed with SIGKILL in the middle of a page
// change leaves the stack locked. The next `make up` finds the lock in the project's own
// backend, taken on this host by a process that is gone, clears it saying so, and the
// interrupted change converges.
func TestMakeUpRecoversFromAKilledCLI(t *testing.T) {
	onMachineEngine.join(t)
	requireMake(t)
	requireToolchain(t)
	e := testbed.RequireEngine(t)
	base, err := testbed.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t, e.DaemonHost())
	w.Backend = filepath.Join(w.Dir, ".state") // make up's own backend, as without a Pulumi account
	w.Env["PULUMI_BACKEND_URL"] = "file://" + w.Backend
	if err := os.Mkdir(w.Backend, 0o700); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, w, "lock"+randomHex(t, 4), auto.ConfigMap{"push": {Value: "false"},
		"hostPort": {Value: fmt.Sprint(port)}, "baseImage": {Value: base}}, e)
	makeUp(t, w, s, "first")

	_, after := changePage(t, w, "changed while pulumi is killed")
	killMidUpdate(t, w, s)
	if locks, _ := filepath.Glob(filepath.Join(w.Backend, ".pulumi", "locks", "*", "*", s.Name, "*.json")); len(locks) == 0 {
		t.Fatal("the killed pulumi left no lock: it was killed too early or too late to test the recovery")
	}
	if out := makeUp(t, w, s, "after the kill"); !strings.Contains(out, "ended mid-update and left its lock; clearing it with pulumi cancel") {
		t.Errorf("make up did not say it cleared the stale lock:\n%s", out)
	}
	expectPage(t, localURL(port), after, "after the recovery")
	expectNoThrowaway(t, e, "") // one the killed preflight left goes with the next preflight
}

// makeUp runs scripts/stack.sh up (what `make up` runs) on the workspace's stack, and
// records what it built for the stack's cleanup.
func makeUp(t *testing.T, w *testbed.Workspace, s *testbed.Stack, when string) string {
	t.Helper()
	cmd := stackScript(w, s)
	out, err := cmd.CombinedOutput()
	if recordErr := s.RecordImages(); recordErr != nil {
		t.Error(recordErr)
	}
	if err != nil {
		t.Fatalf("make up %s: %v\n%s", when, err, out)
	}
	return string(out)
}

// killMidUpdate starts make up's pulumi and kills it with SIGKILL once the update has
// reached the preflight of the new build.
func killMidUpdate(t *testing.T, w *testbed.Workspace, s *testbed.Stack) {
	t.Helper()
	cmd := stackScript(w, s)
	var out testbed.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil { // the script execs pulumi: this PID becomes the CLI's
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "site-preflight") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// The CLI's plugins and language host outlive it, each in a process group of its own:
	// the test ends them too, once the CLI is gone.
	descendants := testbed.DescendantsOf(cmd.Process.Pid)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range descendants {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = cmd.Wait()
	if err := s.RecordImages(); err != nil {
		t.Error(err)
	}
	t.Logf("killed pulumi (pid %d) mid-update; it had printed:\n%s", cmd.Process.Pid, out.String())
}

func stackScript(w *testbed.Workspace, s *testbed.Stack) *exec.Cmd {
	cmd := exec.Command("scripts/stack.sh", "up")
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "STACK="+s.Name)
	for k, v := range w.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}
