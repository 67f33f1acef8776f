package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/example/custom-nginx/internal/testbed"
)

// nginxConfForHost rewrites app/nginx.conf for a run on the host: the same config, with the
// container's absolute paths and port moved into dir. Each rewrite must apply, so a
// change of the config's shape fails here rather than testing something else.
func nginxConfForHost(t *testing.T, dir string, port int) string {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join(appDir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "html")
	if err := os.CopyFS(html, os.DirFS(filepath.Join(appDir, "html"))); err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	for _, r := range []struct{ from, to string }{
		{" /tmp/", " " + dir + "/"}, // first: dir itself may be under /tmp
		{"listen 8080 reuseport;", fmt.Sprintf("listen 127.0.0.1:%d reuseport;", port)},
		{"root /usr/share/nginx/html;", "root " + html + ";"},
	} {
		if !strings.Contains(text, r.from) {
			t.Fatalf("app/nginx.conf no longer contains %q", r.from)
		}
		text = strings.ReplaceAll(text, r.from, r.to)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// workDir is a temp dir the nginx workers (user nobody when run by root) can read.
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "custom-nginx-conf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNginxConfigIsValid(t *testing.T) {
	bin := testbed.HostNginx(t)
	dir := workDir(t)
	conf := nginxConfForHost(t, dir, 8080)
	out, err := exec.Command(bin, "-t", "-q", "-e", "stderr", "-p", dir, "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t rejects app/nginx.conf: %v\n%s", err, out)
	}
}

func TestNginxServesTheSite(t *testing.T) {
	bin := testbed.HostNginx(t)
	dir := workDir(t)
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConfForHost(t, dir, port)
	var logs strings.Builder
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", conf, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The nginx this test started, by its PID: graceful stop, then make sure.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, err := testbed.WaitServed(base+"healthz", 10*time.Second); err != nil {
		t.Fatalf("%v\nnginx output:\n%s", err, logs.String())
	}
	if err := testbed.CheckSite(base, appDir); err != nil {
		t.Fatal(err)
	}
}
