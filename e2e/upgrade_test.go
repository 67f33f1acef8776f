package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
)

// previousMain is the last commit of main before the component's children got the names
// they have now (the port holder was site-container) and the push check became a resource
// of its own. Users have stacks it made.
const previousMain = "89a56623f5331d806e962733854da4750a9b498a"

// lastLanded is the newest commit of main that CI landed before this code: users have
// stacks it made too. When a change to the stack lands, it becomes that change's commit.
const lastLanded = "1244ef3f03b7035f095f17f8733829509db43167"

// TestUpgradeFromPreviousMain: a stack that previousMain's code made moves to lastLanded's
// code, app/ included, with one `up` during which no request fails. The aliases carry the
// renamed children over: the port holder stays, and only what a new build replaces is
// replaced (the image's healthcheck changed too, so nginx is, beside the old one). The
// move from lastLanded's code to today's then changes nothing.
func TestUpgradeFromPreviousMain(t *testing.T) {
	onMachineEngine.join(t)
	e, base, reg := acceptanceSetup(t)
	w := newWorkspaceOf(t, projectAt(t, previousMain), e.DaemonHost())
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := localURL(port)
	stack := newStack(t, w, "upgrade"+randomHex(t, 4), testbed.PushingTo(reg, "upgrade/custom-nginx", port, base), e)
	steps := []lifeStep{
		{"previous main's first up", func(t *testing.T) {
			mustUp(t, stack)
			expectSite(t, url, filepath.Join(w.Dir, "app"), "after previous main's up")
		}},
		{"the last landed code", func(t *testing.T) { replaceProject(t, w, projectAt(t, lastLanded)) }},
		{"one up moves the stack, replacing only what a new build does", func(t *testing.T) {
			p := testbed.StartProbe([]string{url}, probeTimeout)
			r := mustUp(t, stack)
			expectNoFailedRequest(t, p.Stop(), "the move to the last landed code")
			r.expectSteps(t, map[string]string{
				pulumimock.TypeImage:         "update",
				pulumimock.TypeRegistryImage: "replace",
				pulumimock.TypeContainer:     "replace",                // nginx; the port holder stays
				pulumimock.TypeCommand:       "create,replace,replace", // the new push check; the preflight and the smoke check
			})
			expectSite(t, url, filepath.Join(w.Dir, "app"), "after the move")
		}},
		{"today's code", func(t *testing.T) { replaceProject(t, w, "..") }},
		{"moving to it changes nothing", func(t *testing.T) { mustUp(t, stack, optup.ExpectNoChanges()) }},
	}
	runLife(t, "the move from previous main", func(t *testing.T) { expectNoThrowaway(t, e, runningName(stack.Name)) }, steps)
}

// replaceProject puts the project at root in place of w's, its stack files kept.
func replaceProject(t *testing.T, w *testbed.Workspace, root string) {
	t.Helper()
	if err := w.ReplaceProject(root); err != nil {
		t.Fatal(err)
	}
}

// projectAt is the project as it was at commit, from the repository's history, in a
// folder of the test's.
func projectAt(t *testing.T, commit string) string {
	t.Helper()
	if err := exec.Command("git", "-C", "..", "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		testbed.Unavailable(t, "commit "+commit+" is not in this clone's history (a shallow clone?)", "git fetch --unshallow")
	}
	archive, err := exec.Command("git", "-C", "..", "archive", commit).Output()
	if err != nil {
		t.Fatalf("git archive %s: %v", commit, err)
	}
	dir := t.TempDir()
	untar := exec.Command("tar", "-x", "-C", dir)
	untar.Stdin = bytes.NewReader(archive)
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", commit, err, out)
	}
	return dir
}
