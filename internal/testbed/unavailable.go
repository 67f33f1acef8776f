package testbed

import (
	"os"
	"testing"
)

// Unavailable ends a test that needs something this machine lacks: a skip saying what is
// missing and how to get it; under CI (CI=true), whose .ci/run provides it, a failure.
func Unavailable(t testing.TB, missing, fix string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; .ci/run should have provided it (%s)", missing, fix)
	}
	t.Skipf("skipped: %s; %s", missing, fix)
}
