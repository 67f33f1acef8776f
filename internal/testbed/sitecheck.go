package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SecurityHeaders are the headers every response of the site carries, errors included.
var SecurityHeaders = map[string]string{
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
	"Server":                 "nginx", // server_tokens off: no version
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// CheckSite fetches the page, /healthz, the stylesheet and a missing page from baseURL
// (ending in "/") and returns every way the answers differ from what appDir promises.
func CheckSite(baseURL, appDir string) error {
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	file := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(appDir, rel))
		if err != nil {
			fail("%v", err)
		}
		return b
	}

	checks := []struct {
		path, acceptEncoding string
		status               int
		body                 []byte // nil: not compared
		contentType          string
		contentEncoding      string
	}{
		{path: "", status: 200, body: file("html/index.html"), contentType: "text/html; charset=utf-8"},
		{path: "healthz", status: 200, body: []byte("ok\n"), contentType: "text/plain; charset=utf-8"},
		{path: "style.css", status: 200, body: file("html/style.css"), contentType: "text/css; charset=utf-8"},
		{path: "no/such/page", status: 404, body: file("html/404.html"), contentType: "text/html; charset=utf-8"},
		{path: "favicon.ico", status: 204, body: []byte{}},
		{path: "", acceptEncoding: "gzip", status: 200, contentEncoding: "gzip"},
	}
	for _, c := range checks {
		req, err := http.NewRequest(http.MethodGet, baseURL+c.path, nil)
		if err != nil {
			return err
		}
		if c.acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", c.acceptEncoding) // also stops Go from decoding it
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			fail("GET /%s: %v", c.path, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fail("GET /%s: %v", c.path, err)
		}
		if resp.StatusCode != c.status {
			fail("GET /%s: status %d, want %d", c.path, resp.StatusCode, c.status)
		}
		if c.body != nil && !bytes.Equal(body, c.body) {
			fail("GET /%s: body of %d bytes differs from the %d bytes in app/", c.path, len(body), len(c.body))
		}
		if got := resp.Header.Get("Content-Type"); c.contentType != "" && got != c.contentType {
			fail("GET /%s: Content-Type %q, want %q", c.path, got, c.contentType)
		}
		if got := resp.Header.Get("Content-Encoding"); got != c.contentEncoding {
			fail("GET /%s (Accept-Encoding %q): Content-Encoding %q, want %q", c.path, c.acceptEncoding, got, c.contentEncoding)
		}
		for name, want := range SecurityHeaders {
			if got := resp.Header.Get(name); got != want {
				fail("GET /%s: %s %q, want %q", c.path, name, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			fail("GET /%s: Content-Security-Policy %q lacks default-src 'none' or frame-ancestors 'none'", c.path, csp)
		}
	}
	return errors.Join(problems...)
}

// WaitServed polls url until it answers 200, and returns how long that took.
func WaitServed(url string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	quick := &http.Client{Timeout: time.Second}
	for {
		resp, err := quick.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("%s not served after %s (last error %v)", url, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
