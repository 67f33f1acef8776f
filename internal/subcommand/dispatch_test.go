package subcommand_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/subcommand"
)

// TestRun: the program's binary runs a subcommand when its first argument names one
// (here with no further arguments: bad usage, exit 2), and `pulumi up`'s program otherwise.
func TestRun(t *testing.T) {
	for _, mode := range []string{subcommand.SmokeCheckName, subcommand.RolloutWaitName} {
		var stdout, stderr bytes.Buffer
		code, ok := subcommand.Run([]string{mode}, &stdout, &stderr)
		if !ok || code != 2 || !strings.Contains(stderr.String(), "usage: "+mode) {
			t.Errorf("Run(%s) = %d, %v, stderr %q; want 2, true and its usage", mode, code, ok, stderr.String())
		}
	}
	for _, args := range [][]string{nil, {"-v"}, {"up"}} {
		if _, ok := subcommand.Run(args, &bytes.Buffer{}, &bytes.Buffer{}); ok {
			t.Errorf("Run(%q) ran a subcommand; want the Pulumi program", args)
		}
	}
}
