package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/subcommand"
	"github.com/example/custom-nginx/internal/testbed"
)

// TestPreflightOnARealEngine runs the preflight subcommand against builds of app/ on the
// engine: a good build passes, and each change a user can get wrong while nginx -t still
// passes fails with what was wrong. No throwaway container is ever left behind.
func TestPreflightOnARealEngine(t *testing.T) {
	onMachineEngine.join(t)
	e := testbed.RequireEngine(t)
	_, goodID, _ := sharedApp(t, e)
	page, err := site.PageSHA256(appDir)
	if err != nil {
		t.Fatal(err)
	}
	check := subcommand.Preflight{DockerHost: e.DaemonHost(), SHA256: page, HostIP: "127.0.0.1", SiteHost: "127.0.0.1", Timeout: subcommand.PreflightTimeout}

	t.Run("a throwaway container a killed run left goes first", func(t *testing.T) {
		owned := check
		owned.Image, owned.Owner = goodID, "custom-nginx-e2e-"+randomHex(t, 4)
		cfg, hostCfg := testbed.HardenedContainer(goodID)
		cfg.Labels = map[string]string{subcommand.PreflightLabel: owned.Owner}
		left, err := e.ContainerCreate(context.Background(), cfg, hostCfg, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.RemoveContainer(left.ID) })
		if msg, err := owned.Run(context.Background()); err != nil {
			t.Fatalf("preflight with a leftover of its owner: %q, %v", msg, err)
		}
		if _, err := e.ContainerInspect(context.Background(), left.ID); err == nil {
			t.Errorf("the leftover %.12s of %s is still there", left.ID, owned.Owner)
		}
	})
	t.Run("a good build passes", func(t *testing.T) {
		check.Image = goodID
		msg, err := check.Run(context.Background())
		if err != nil || !strings.Contains(msg, "is healthy") {
			t.Errorf("preflight of the good build: %q, %v", msg, err)
		}
		expectNoThrowaway(t, e, "")
	})
	for _, tt := range []struct {
		name, from, to, want string
	}{
		{"a wrong listen port", "listen 8080 reuseport;", "listen 8081 reuseport;", "the custom page is not served at http://127.0.0.1:"},
		{"an unreadable root", "root /usr/share/nginx/html;", "root /nonexistent;", "HTTP 404"},
		{"another page as the index", "index index.html;", "index 404.html;", "want sha256 " + page},
	} {
		t.Run(tt.name, func(t *testing.T) {
			check.Image = buildChangedApp(t, e, tt.from, tt.to)
			msg, err := check.Run(context.Background())
			if err == nil {
				t.Fatalf("preflight passed a broken build: %s", msg)
			}
			t.Logf("preflight refused it:\n%v", err)
			for _, want := range []string{"the running site was left alone", tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("preflight error does not say %q:\n%v", want, err)
				}
			}
			expectNoThrowaway(t, e, "")
		})
	}
}

// TestPreflightInterrupted: the command provider stops a check with a signal (Ctrl-C of
// `pulumi up`); the throwaway container goes with it.
func TestPreflightInterrupted(t *testing.T) {
	onMachineEngine.join(t)
	e := testbed.RequireEngine(t)
	page, err := site.PageSHA256(appDir)
	if err != nil {
		t.Fatal(err)
	}
	program := filepath.Join(t.TempDir(), "custom-nginx")
	if out, err := exec.Command("go", "build", "-o", program, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	check := subcommand.Preflight{DockerHost: e.DaemonHost(), SHA256: page, HostIP: "127.0.0.1", SiteHost: "127.0.0.1", Timeout: time.Minute,
		Image: buildChangedApp(t, e, "listen 8080 reuseport;", "listen 8081 reuseport;")} // retried until the timeout: never served
	cmd := exec.Command(program, append([]string{subcommand.PreflightName}, check.Args()...)...)
	var out testbed.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := waitThrowaway(e, 20*time.Second); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Errorf("the interrupted preflight passed:\n%s", out.String())
	}
	t.Logf("the interrupted preflight said:\n%s", out.String())
	expectNoThrowaway(t, e, "")
}

// waitThrowaway waits until a throwaway preflight container exists.
func waitThrowaway(e *testbed.Engine, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		list, err := e.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", subcommand.PreflightLabel))})
		if err != nil || len(list) > 0 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no throwaway preflight container after %s", limit)
}

// buildChangedApp builds a copy of app/ whose nginx.conf has from replaced by to, and
// removes the image when the test ends.
func buildChangedApp(t *testing.T, e *testbed.Engine, from, to string) string {
	t.Helper()
	_, changed := confWith(t, appDir, from, to)
	dir := appCopy(t, string(changed))
	base, err := testbed.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	tag := "custom-nginx-e2e/changed:" + randomHex(t, 6)
	t.Cleanup(func() { e.RemoveImage(tag) })
	id, err := e.BuildApp(context.Background(), testbed.AppBuild{Dir: dir, Tag: tag, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// expectNoThrowaway fails if a preflight container of owner (a stack's running name; ""
// for any) is still on the engine.
func expectNoThrowaway(t *testing.T, e *testbed.Engine, owner string) {
	t.Helper()
	label := subcommand.PreflightLabel
	if owner != "" {
		label += "=" + owner
	}
	if err := e.WaitNoContainers(context.Background(), filters.NewArgs(filters.Arg("label", label)), 0); err != nil {
		t.Errorf("a throwaway preflight container is left: %v", err)
	}
}
