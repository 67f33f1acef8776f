package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/testsupport"
)

func requireMake(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		testsupport.Unavailable(t, "no make on this machine", "install make (Debian: apt-get install make)")
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
