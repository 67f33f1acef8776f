package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMakeUpNamesWhatIsMissing runs `make up` the way a newcomer would on a machine
// without the Pulumi CLI: it must stop before touching anything and say what to install.
func TestMakeUpNamesWhatIsMissing(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("skipped: no make on this machine")
	}
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
