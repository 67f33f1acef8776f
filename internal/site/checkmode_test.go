package site_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/rollout"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/smoke"
)

// TestCheckMode: the program's binary runs a check mode when its first argument names one
// (here with no further arguments: bad usage, exit 2), and `pulumi up`'s program otherwise.
func TestCheckMode(t *testing.T) {
	for _, mode := range []string{smoke.Command, rollout.Command} {
		var stdout, stderr bytes.Buffer
		code, ok := site.CheckMode([]string{mode}, &stdout, &stderr)
		if !ok || code != 2 || !strings.Contains(stderr.String(), "usage: "+mode) {
			t.Errorf("CheckMode(%s) = %d, %v, stderr %q; want 2, true and its usage", mode, code, ok, stderr.String())
		}
	}
	for _, args := range [][]string{nil, {"-v"}, {"up"}} {
		if _, ok := site.CheckMode(args, &bytes.Buffer{}, &bytes.Buffer{}); ok {
			t.Errorf("CheckMode(%q) ran a check mode; want the Pulumi program", args)
		}
	}
}
