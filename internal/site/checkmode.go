package site

import (
	"io"

	"github.com/example/custom-nginx/internal/imageindex"
	"github.com/example/custom-nginx/internal/preflight"
	"github.com/example/custom-nginx/internal/rollout"
	"github.com/example/custom-nginx/internal/smoke"
)

// checkModes are the modes the site's check commands run this program's binary in.
var checkModes = map[string]func(args []string, stdout, stderr io.Writer) int{
	smoke.Command:      smoke.Main,
	rollout.Command:    rollout.Main,
	preflight.Command:  preflight.Main,
	imageindex.Command: imageindex.Main,
}

// CheckMode runs the check mode args name (this program's arguments: the mode, then its
// own) and returns its exit code; ok is false when args name no check mode.
func CheckMode(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	run, ok := checkModes[args[0]]
	if !ok {
		return 0, false
	}
	return run(args[1:], stdout, stderr), true
}
