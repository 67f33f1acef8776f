package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
	"github.com/example/custom-nginx/internal/testpki"
)

// TestAcceptanceHTTPS runs a stack that serves HTTPS with a certificate of the tests' own
// CA through the real CLI and engine: refusals of bad certificates before anything is
// created, the page over HTTPS with h2, HSTS and the redirect, Chromium and testssl.sh,
// a rotation under the probe with no rebuild, and the key in plain text nowhere.
func TestAcceptanceHTTPS(t *testing.T) {
	onMachineEngine.join(t)
	h := newHTTPSLife(t)
	runLife(t, "the HTTPS stack's life", func(t *testing.T) { expectNoThrowaway(t, h.engine, runningName(h.stack.Name)) }, []lifeStep{
		{"bad certificates are refused before anything is created", h.refusals},
		{"first up serves HTTPS", h.firstUp},
		{"Chromium trusts the page", h.browser},
		{"testssl.sh finds nothing of MEDIUM or worse", h.testssl},
		{"no-op up changes nothing", h.noOpUp},
		{"a new certificate rolls out with no failed request and no rebuild", h.rotate},
		{"the key is in plain text nowhere", h.keyNowhere},
	})
}

// httpsLife is what the steps of TestAcceptanceHTTPS share.
type httpsLife struct {
	ctx       context.Context
	engine    *testbed.Engine
	ws        *testbed.Workspace
	appFolder string
	stack     *testbed.Stack
	ca        *testpki.CA
	leaf      testpki.Leaf // the certificate served now
	keys      []string     // every key the stack was given, PEM
	httpPort  int
	url       string // https://localhost:<httpsPort>/
	outputs   []string
}

func newHTTPSLife(t *testing.T) *httpsLife {
	requireToolchain(t)
	e := testbed.RequireEngine(t)
	base, err := testbed.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	httpPort, httpsPort := freePort(t), freePort(t)
	h := &httpsLife{ctx: context.Background(), engine: e, ws: newWorkspace(t, e.DaemonHost()), ca: testpki.NewCA(t, "custom-nginx HTTPS test CA"),
		httpPort: httpPort, url: fmt.Sprintf("https://localhost:%d/", httpsPort)}
	h.appFolder = filepath.Join(h.ws.Dir, "app")
	h.leaf = h.ca.IssueNow(t, "localhost")
	h.keys = []string{h.leaf.KeyPEM}
	h.stack = newStack(t, h.ws, "tls"+randomHex(t, 4), auto.ConfigMap{
		"push": {Value: "false"}, "baseImage": {Value: base},
		"hostPort": {Value: fmt.Sprint(httpPort)}, "httpsPort": {Value: fmt.Sprint(httpsPort)},
		"tlsTrustedCA": {Value: h.ca.PEM},
	}, e)
	return h
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// setCertificate gives the stack leaf and key, the key as a secret.
func (h *httpsLife) setCertificate(t *testing.T, certPEM, keyPEM string) {
	t.Helper()
	if err := h.stack.SetAllConfig(h.ctx, auto.ConfigMap{"tlsCertificate": {Value: certPEM}, "tlsKey": {Value: keyPEM, Secret: true}}); err != nil {
		t.Fatal(err)
	}
}

// up is an up whose output the key scan reads later.
func (h *httpsLife) up(t *testing.T, opts ...optup.Option) run {
	t.Helper()
	r := up(t, h.stack, opts...)
	h.outputs = append(h.outputs, r.allOutput())
	return r
}

func (h *httpsLife) refusals(t *testing.T) {
	other := testpki.OtherKey(t)
	expired := h.ca.Issue(t, []string{"localhost"}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	wrongName := h.ca.IssueNow(t, "www.example.com")
	h.keys = append(h.keys, other, expired.KeyPEM, wrongName.KeyPEM)
	for _, tt := range []struct{ name, cert, key, want string }{
		{"a key of another certificate", h.leaf.CertPEM, other, "config tlsKey: does not go with tlsCertificate"},
		{"an expired certificate", expired.CertPEM, expired.KeyPEM, "config tlsCertificate: expired on"},
		{"a certificate for another name", wrongName.CertPEM, wrongName.KeyPEM, `config tlsCertificate: does not cover siteHost "localhost"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.setCertificate(t, tt.cert, tt.key)
			r := h.up(t)
			if r.err == nil || !strings.Contains(r.allOutput(), tt.want) {
				t.Fatalf("up with %s: want it refused with %q, got err %v", tt.name, tt.want, r.err)
			}
			if resources := stateResources(t, h.stack); testbed.HasType(resources, pulumimock.TypeImage) || testbed.HasType(resources, pulumimock.TypeContainer) {
				t.Fatal("a refused certificate created docker resources")
			}
		})
	}
}

// httpsClient trusts ca alone, offers h2 and follows no redirect.
func httpsClient(ca *testpki.CA) *http.Client {
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
}

// get fetches url trusting ca, and returns the answer with its whole body.
func get(t *testing.T, ca *testpki.CA, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := httpsClient(ca).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func (h *httpsLife) firstUp(t *testing.T) {
	h.setCertificate(t, h.leaf.CertPEM, h.leaf.KeyPEM)
	r := h.up(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.out("url") != h.url {
		t.Errorf("url %q, want %q", r.out("url"), h.url)
	}
	h.expectServed(t, h.leaf, "after the first up")
	plain := fmt.Sprintf("http://localhost:%d", h.httpPort)
	resp, _ := get(t, h.ca, plain+"/some/path?q=1")
	if want := strings.TrimSuffix(h.url, "/") + "/some/path?q=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP answered %s to %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
	}
	if resp, body := get(t, h.ca, plain+"/healthz"); resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz over plain HTTP answered %s %q, want 200 ok: the healthcheck asks it there", resp.Status, body)
	}
}

// expectServed fails unless the site serves the page byte for byte over HTTP/2 with HSTS
// and the security headers, under leaf.
func (h *httpsLife) expectServed(t *testing.T, leaf testpki.Leaf, when string) {
	t.Helper()
	expectHTTPSPage(t, h.ca, leaf, h.url, h.appFolder, when)
}

// expectHTTPSPage fails unless url serves appFolder's page byte for byte over HTTP/2 with
// HSTS and the security headers, under leaf, which ca issued.
func expectHTTPSPage(t *testing.T, ca *testpki.CA, leaf testpki.Leaf, url, appFolder, when string) {
	t.Helper()
	page, err := os.ReadFile(filepath.Join(appFolder, "html", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, ca, url)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, page) {
		t.Fatalf("%s: %s answered %s with %d bytes, want 200 and the page's %d", when, url, resp.Status, len(body), len(page))
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("%s: negotiated %s, want HTTP/2.0", when, resp.Proto)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=63072000") || strings.Contains(hsts, "preload") {
		t.Errorf("%s: Strict-Transport-Security %q, want max-age of two years and no preload", when, hsts)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: the security headers are missing over HTTPS: %v", when, resp.Header)
	}
	served := resp.TLS.PeerCertificates[0]
	if want := mustLeafCert(t, leaf); !served.Equal(want) {
		t.Errorf("%s: serves the certificate with serial %x, want %x", when, served.SerialNumber, want.SerialNumber)
	}
}

func mustLeafCert(t *testing.T, leaf testpki.Leaf) *x509.Certificate {
	t.Helper()
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func (h *httpsLife) browser(t *testing.T) {
	testbed.CheckInBrowser(t, h.url, h.appFolder, screenshotDir(t, "https"), testbed.TrustingCA(t, h.ca.PEM))
}

func (h *httpsLife) noOpUp(t *testing.T) {
	r := h.up(t, optup.ExpectNoChanges())
	if r.err != nil {
		t.Fatal(r.err)
	}
}

// rotate: a new certificate and key, with the same image, is proven in a throwaway
// container and then served by a new nginx beside the old one: the probe, over HTTPS,
// sees no failed request.
func (h *httpsLife) rotate(t *testing.T) {
	h.leaf = h.ca.IssueNow(t, "localhost", "127.0.0.1")
	h.keys = append(h.keys, h.leaf.KeyPEM)
	h.setCertificate(t, h.leaf.CertPEM, h.leaf.KeyPEM)
	p := testbed.StartProbeTrusting([]string{h.url}, probeTimeout, h.ca.Pool())
	r := h.up(t)
	seen := p.Stop()
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.expectSteps(t, map[string]string{
		pulumimock.TypeVolume:    "replace",         // the new files in a volume of their own
		pulumimock.TypeContainer: "replace",         // nginx; no build, the port holder stays
		pulumimock.TypeCommand:   "replace,replace", // the preflight with the new certificate, the smoke check
	})
	expectNoFailedRequest(t, seen, "certificate rotation")
	if seen.Requests < 10 {
		t.Errorf("the probe made only %d requests: it did not watch the rotation", seen.Requests)
	}
	h.expectServed(t, h.leaf, "after the rotation")
}

// keyNowhere: no key the stack was given is in plain text in the image (layers, history,
// config), the backend's state, the stack file, the CLI's output, docker inspect of the
// stack's containers, or their logs.
func (h *httpsLife) keyNowhere(t *testing.T) {
	places := map[string][]byte{"the CLI's output": []byte(strings.Join(h.outputs, "\n"))}
	statePath, err := h.stack.StatePath()
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"the backend's state": statePath, "the stack file": filepath.Join(h.ws.Dir, "Pulumi."+h.stack.Name+".yaml")} {
		if places[name], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	outputs, err := h.stack.Outputs(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	places["the image (docker save)"] = h.savedImage(t, fmt.Sprint(outputs["imageId"].Value))
	for name, text := range h.containers(t) {
		places[name] = text
	}
	for place, content := range places {
		for _, key := range h.keys {
			if line := keyLine(key); bytes.Contains(content, []byte(line)) {
				t.Errorf("a key is in plain text in %s", place)
			}
		}
	}
	// Not blind: the state holds the key where it is used, as a ciphertext.
	if !bytes.Contains(places["the backend's state"], []byte(`"ciphertext":"v1:`)) {
		t.Error("the backend's state holds no secret at all: the scan looked in the wrong file")
	}
}

// keyLine is a line of the key's PEM body: a key in plain text contains it.
func keyLine(keyPEM string) string { return strings.Split(strings.TrimSpace(keyPEM), "\n")[1] }

// savedImage is the image as `docker save` writes it: every layer, the config and history.
func (h *httpsLife) savedImage(t *testing.T, id string) []byte {
	t.Helper()
	rc, err := h.engine.ImageSave(h.ctx, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	saved, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return saved
}

// containers are docker inspect and the logs of each of the stack's containers.
func (h *httpsLife) containers(t *testing.T) map[string][]byte {
	t.Helper()
	list, err := h.engine.ContainerList(h.ctx, container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string][]byte{}
	for _, c := range list {
		if !strings.HasPrefix(strings.TrimPrefix(c.Names[0], "/"), runningName(h.stack.Name)) {
			continue
		}
		_, raw, err := h.engine.ContainerInspectWithRaw(h.ctx, c.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		found["docker inspect "+c.Names[0]] = raw
		logs, err := h.engine.ContainerLogs(h.ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(logs)
		logs.Close()
		found["the logs of "+c.Names[0]] = text
	}
	if len(found) < 4 {
		t.Fatalf("found %d inspections and logs of the stack's containers, want those of the port holder and nginx", len(found))
	}
	return found
}
