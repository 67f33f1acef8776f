package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
)

// previousMain is the last commit of main before the component's children got the names
// they have now (the port holder was site-container) and the push check became a resource
// of its own. Users have stacks it made.
const previousMain = "89a56623f5331d806e962733854da4750a9b498a"

// TestUpgradeFromPreviousMain: a stack that previousMain's code made moves to today's code
// with one `up` that replaces and deletes nothing (the aliases carry the renamed children
// over), during which no request fails; the `up` after it is a no-op.
func TestUpgradeFromPreviousMain(t *testing.T) {
	e, base, reg := acceptanceSetup(t)
	w := newWorkspaceOf(t, projectAt(t, previousMain), e.DaemonHost())
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := localURL(port)
	stack := newStack(t, w, "upgrade"+randomHex(t, 4), auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: reg.Password, Secret: true},
		"repository":       {Value: "upgrade/custom-nginx"},
		"hostPort":         {Value: fmt.Sprint(port)},
		"baseImage":        {Value: base},
	}, e)
	steps := []lifeStep{
		{"previous main's first up", func(t *testing.T) {
			mustUp(t, stack)
			expectSite(t, url, filepath.Join(w.Dir, "app"), "after previous main's up")
		}},
		{"today's code, the same app", func(t *testing.T) {
			if err := w.ReplaceProject("..", "app"); err != nil {
				t.Fatal(err)
			}
		}},
		{"one up moves the stack, replacing nothing", func(t *testing.T) {
			p := testbed.StartProbe([]string{url}, probeTimeout)
			r := mustUp(t, stack)
			expectNoFailedRequest(t, p.Stop(), "the move to today's code")
			r.expectSteps(t, map[string]string{pulumimock.TypeCommand: "create"}) // the push check
			expectSite(t, url, filepath.Join(w.Dir, "app"), "after the move")
		}},
		{"then a no-op", func(t *testing.T) { mustUp(t, stack, optup.ExpectNoChanges()) }},
	}
	runLife(t, "the move from previous main", func(t *testing.T) { expectNoThrowaway(t, e) }, steps)
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
	if err := untar(bytes.NewReader(archive), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// untar writes the regular files and folders of the tar stream r under dir.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(path, b, os.FileMode(h.Mode)&0o777)
			}
		}
		if err != nil {
			return err
		}
	}
}
