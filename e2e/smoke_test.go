// The smoke check is tested against the host's real nginx, the server it will face.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/custom-nginx/internal/subcommand"
	"github.com/example/custom-nginx/internal/testbed"
)

// runSubcommand runs the subcommand name with args as the program's binary does, and
// returns its exit code.
func runSubcommand(name string, args []string, stdout, stderr io.Writer) int {
	code, _ := subcommand.Run(append([]string{name}, args...), stdout, stderr)
	return code
}

const (
	page      = "<!doctype html>\n<title>custom page</title>\n<h1>Hello from the custom page</h1>\n"
	otherPage = "<!doctype html>\n<title>Welcome to nginx!</title>\n"
)

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// nginxSite is an nginx config for 127.0.0.1:port serving page at / and otherPage at
// /other.html; /e404 and /e500 answer those statuses with page as their body, and /sub
// redirects to /sub/, which serves page.
type nginxSite struct {
	bin, dir, conf string
	port           int
}

func newNginxSite(t *testing.T) *nginxSite {
	t.Helper()
	bin := testbed.HostNginx(t)
	dir := t.TempDir()
	html := filepath.Join(dir, "html")
	for name, body := range map[string]string{
		"index.html": page, "other.html": otherPage, "sub/index.html": page,
	} {
		p := filepath.Join(html, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// master_process off: one process, no worker (and no switch to user nobody), so
	// stopping the PID stops all of nginx. The temp paths move out of /var/lib/nginx.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid "%[1]s/nginx.pid";
error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path "%[1]s/body";
  proxy_temp_path "%[1]s/proxy";
  fastcgi_temp_path "%[1]s/fastcgi";
  uwsgi_temp_path "%[1]s/uwsgi";
  scgi_temp_path "%[1]s/scgi";
  server {
    listen 127.0.0.1:%[2]d;
    root "%[3]s";
    error_page 404 500 /index.html;
    location = /e404 { return 404; }
    location = /e500 { return 500; }
  }
}
`, dir, port, html)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return &nginxSite{bin: bin, dir: dir, conf: path, port: port}
}

func (s *nginxSite) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", s.port, path)
}

// start runs nginx until the test ends and returns once it accepts connections.
func (s *nginxSite) start(t *testing.T) {
	t.Helper()
	var logs bytes.Buffer
	cmd := exec.Command(s.bin, "-e", "stderr", "-p", s.dir, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		// The nginx this test started, by its PID: fast shutdown, then make sure.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("nginx exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// attemptRE finds the attempt count in either message.
var attemptRE = regexp.MustCompile(`(?:attempt (\d+)\)|after (\d+) attempts?)`)

func attempts(t *testing.T, msg string) int {
	t.Helper()
	m := attemptRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no attempt count in %q", msg)
	}
	n, _ := strconv.Atoi(m[1] + m[2])
	return n
}

func TestSmokeCheckAgainstNginx(t *testing.T) {
	s := newNginxSite(t)
	s.start(t)
	want := sha256hex(page)

	const tries, interval = 4, 50 * time.Millisecond
	tests := []struct {
		name       string
		path       string
		ok         bool
		attempts   int
		contains   []string
		notContain []string
	}{
		{name: "the page", path: "", ok: true, attempts: 1,
			contains: []string{"custom page served at " + s.url(""), "sha256 " + want, "attempt 1)"}},
		{name: "a wrong page", path: "other.html", attempts: tries,
			contains: []string{"not served at " + s.url("other.html"), "want sha256 " + want,
				"last got sha256 " + sha256hex(otherPage) + " (HTTP 200 OK)"}},
		{name: "the page with status 404", path: "e404", attempts: tries,
			contains: []string{"last got sha256 " + want + " (HTTP 404 Not Found)"}},
		{name: "the page with status 500", path: "e500", attempts: tries,
			contains: []string{"last got sha256 " + want + " (HTTP 500 Internal Server Error)"}},
		{name: "a redirect to the page is not followed", path: "sub", attempts: tries,
			contains: []string{"(HTTP 301 Moved Permanently)"}, notContain: []string{"last got sha256 " + want}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := subcommand.SmokeCheck{URL: s.url(tt.path), SHA256: want, Attempts: tries, Interval: interval, RequestTimeout: 2 * time.Second}
			start := time.Now()
			msg, err := c.Run(context.Background())
			elapsed := time.Since(start)
			if tt.ok != (err == nil) {
				t.Fatalf("ok %v, want %v: %q, %v", err == nil, tt.ok, msg, err)
			}
			if err != nil {
				msg = err.Error()
			}
			t.Log(msg)
			if got := attempts(t, msg); got != tt.attempts {
				t.Errorf("%d attempts, want %d: %s", got, tt.attempts, msg)
			}
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("message lacks %q: %s", s, msg)
				}
			}
			for _, s := range tt.notContain {
				if strings.Contains(msg, s) {
					t.Errorf("message has %q: %s", s, msg)
				}
			}
			// Bounded, not timed: local requests take milliseconds, the waits dominate.
			if limit := 10 * tries * interval; elapsed > limit {
				t.Errorf("took %v, more than %v", elapsed, limit)
			}
		})
	}
}

func TestSmokeCheckNothingListening(t *testing.T) {
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const tries, interval = 3, 50 * time.Millisecond
	c := subcommand.SmokeCheck{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), SHA256: sha256hex(page),
		Attempts: tries, Interval: interval, RequestTimeout: 2 * time.Second}
	start := time.Now()
	msg, err := c.Run(context.Background())
	if err == nil {
		t.Fatalf("succeeded with nothing listening: %s", msg)
	}
	t.Log(err)
	if got := attempts(t, err.Error()); got != tries {
		t.Errorf("%d attempts, want %d", got, tries)
	}
	for _, s := range []string{c.URL, "want sha256 " + c.SHA256, "connection refused"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if limit := 10 * tries * interval; time.Since(start) > limit {
		t.Errorf("took %v, more than %v", time.Since(start), limit)
	}
}

// A server that accepts connections but never answers: each try ends at RequestTimeout.
func TestSmokeCheckNoAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // never Accept: the kernel completes the handshake, nothing answers
	const tries, timeout = 2, 200 * time.Millisecond
	c := subcommand.SmokeCheck{URL: "http://" + l.Addr().String() + "/", SHA256: sha256hex(page),
		Attempts: tries, Interval: 10 * time.Millisecond, RequestTimeout: timeout}
	start := time.Now()
	msg, err := c.Run(context.Background())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("succeeded with no answer: %s", msg)
	}
	t.Log(err)
	if got := attempts(t, err.Error()); got != tries {
		t.Errorf("%d attempts, want %d", got, tries)
	}
	if !strings.Contains(err.Error(), "no complete answer within the 200ms timeout") {
		t.Errorf("error does not name the timeout: %v", err)
	}
	if elapsed < tries*timeout || elapsed > 10*tries*timeout {
		t.Errorf("took %v, want about %v", elapsed, tries*timeout)
	}
}

func TestSmokeCheckSlowStart(t *testing.T) {
	s := newNginxSite(t)
	c := subcommand.SmokeCheck{URL: s.url(""), SHA256: sha256hex(page), Attempts: 100, Interval: 50 * time.Millisecond, RequestTimeout: 2 * time.Second}
	type result struct {
		msg string
		err error
	}
	res := make(chan result, 1)
	go func() {
		msg, err := c.Run(context.Background())
		res <- result{msg, err}
	}()
	time.Sleep(500 * time.Millisecond)
	s.start(t)
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Log(r.msg)
	if n := attempts(t, r.msg); n <= 1 {
		t.Errorf("served at attempt %d, before nginx started", n)
	}
}

func TestSmokeCheckStopsWithContext(t *testing.T) {
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := subcommand.SmokeCheck{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), SHA256: sha256hex(page),
		Attempts: 1000, Interval: 50 * time.Millisecond, RequestTimeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want one wrapping %v", err, context.DeadlineExceeded)
	}
	t.Log(err)
	if n := attempts(t, err.Error()); n < 1 || n >= c.Attempts {
		t.Errorf("%d attempts before the context ended", n)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v after a 300ms context", time.Since(start))
	}
}

func TestSmokeCheckRejectsInvalidCheck(t *testing.T) {
	c := subcommand.SmokeCheck{URL: "http://127.0.0.1:1/", SHA256: sha256hex(page), Attempts: 0, Interval: time.Millisecond, RequestTimeout: time.Second}
	if _, err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "attempts") {
		t.Errorf("attempts 0: error %v", err)
	}
}

func TestSmokeCheckArgsRoundTrip(t *testing.T) {
	for _, c := range []subcommand.SmokeCheck{
		{URL: "http://localhost:8080/", SHA256: sha256hex(page), Attempts: 100, Interval: 100 * time.Millisecond, RequestTimeout: 2 * time.Second},
		{URL: "https://[::1]:8443/a%20b/?q=-x&y=1#frag", SHA256: strings.Repeat("0f", 32), Attempts: 1, Interval: 1500*time.Millisecond + 1, RequestTimeout: 90 * time.Minute},
	} {
		got, err := subcommand.ParseSmokeCheck(c.Args())
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.Args(), err)
		}
		if got != c {
			t.Errorf("Parse(%q) = %+v, want %+v", c.Args(), got, c)
		}
	}
	got, err := subcommand.ParseSmokeCheck([]string{"-sha256", sha256hex(page), "http://localhost/"})
	if err != nil {
		t.Fatal(err)
	}
	want := subcommand.SmokeCheck{URL: "http://localhost/", SHA256: sha256hex(page), Attempts: 100, Interval: 100 * time.Millisecond, RequestTimeout: 2 * time.Second}
	if got != want {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
}

func TestSmokeCheckExitCodes(t *testing.T) {
	s := newNginxSite(t)
	s.start(t)
	good := subcommand.SmokeCheck{URL: s.url(""), SHA256: sha256hex(page), Attempts: 3, Interval: 20 * time.Millisecond, RequestTimeout: 2 * time.Second}
	wrong := good
	wrong.URL = s.url("other.html")
	args := func(c subcommand.SmokeCheck, edit func([]string) []string) []string { return edit(c.Args()) }
	set := func(i int, v string) func([]string) []string {
		return func(a []string) []string { a[i] = v; return a }
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring; "" means nothing at all
		stderr string
	}{
		{name: "served", args: good.Args(), code: 0, stdout: "custom page served at " + good.URL},
		{name: "not served", args: wrong.Args(), code: 1, stderr: "not served at " + wrong.URL + " after 3 attempts"},
		{name: "help", args: []string{"-h"}, code: 0, stdout: "usage: smoke-check"},
		{name: "missing url", args: []string{"-sha256", good.SHA256}, code: 2, stderr: "url is required"},
		{name: "relative url", args: args(good, set(4, "/index.html")), code: 2, stderr: "not an absolute http or https URL"},
		{name: "url without scheme", args: args(good, set(4, "localhost:8080")), code: 2, stderr: "not an absolute http or https URL"},
		{name: "ftp url", args: args(good, set(4, "ftp://localhost/")), code: 2, stderr: "not an absolute http or https URL"},
		{name: "url without host", args: args(good, set(4, "http:///x")), code: 2, stderr: "not an absolute http or https URL"},
		{name: "unparsable url", args: args(good, set(4, "http://[::1/")), code: 2, stderr: "url:"},
		{name: "uppercase sha256", args: args(good, set(0, "-sha256="+strings.ToUpper(good.SHA256))), code: 2, stderr: "not 64 lowercase hex digits"},
		{name: "short sha256", args: args(good, set(0, "-sha256="+good.SHA256[1:])), code: 2, stderr: "not 64 lowercase hex digits"},
		{name: "non-hex sha256", args: args(good, set(0, "-sha256="+strings.Repeat("g", 64))), code: 2, stderr: "not 64 lowercase hex digits"},
		{name: "attempts 0", args: args(good, set(1, "-attempts=0")), code: 2, stderr: "attempts 0 is less than 1"},
		{name: "attempts not a number", args: args(good, set(1, "-attempts=many")), code: 2, stderr: "-attempts"},
		{name: "interval 0", args: args(good, set(2, "-interval=0s")), code: 2, stderr: "interval 0s is not positive"},
		{name: "negative timeout", args: args(good, set(3, "-timeout=-1s")), code: 2, stderr: "timeout -1s is not positive"},
		{name: "unknown flag", args: append([]string{"-retries=3"}, good.Args()...), code: 2, stderr: "-retries"},
		{name: "extra argument", args: append(good.Args(), "now"), code: 2, stderr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runSubcommand(subcommand.SmokeCheckName, tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			check := func(stream, got, want string) {
				if want == "" && got != "" || !strings.Contains(got, want) {
					t.Errorf("%s %q, want it to contain %q", stream, got, want)
				}
			}
			check("stdout", stdout.String(), tt.stdout)
			check("stderr", stderr.String(), tt.stderr)
			if tt.code == 2 && !strings.Contains(stderr.String(), "usage: smoke-check") {
				t.Errorf("bad usage without the usage on stderr: %q", stderr.String())
			}
		})
	}
}
