package e2e

import (
	"os/exec"
	"testing"

	"github.com/example/custom-nginx/internal/testbed"
)

// TestShellScriptsPassShellcheck lints every shell script of the project.
func TestShellScriptsPassShellcheck(t *testing.T) {
	bin, err := exec.LookPath("shellcheck")
	if err != nil {
		testbed.Unavailable(t, "no shellcheck on this machine", "apt-get install -y shellcheck")
	}
	for _, script := range []struct{ path, shell string }{
		{"../scripts/stack.sh", "bash"},
		{"../scripts/standin-base.sh", "bash"},
		{"../.ci/run", "bash"},
	} {
		if out, err := exec.Command(bin, "-s", script.shell, script.path).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", script.path, err, out)
		}
	}
}

// TestGofmt keeps the Go sources formatted.
func TestGofmt(t *testing.T) {
	out, err := exec.Command("gofmt", "-l", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("gofmt: %v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Fatalf("not gofmt-ed:\n%s", out)
	}
}
