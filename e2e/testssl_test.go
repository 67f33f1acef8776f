package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/testbed"
)

// testsslFinding is one line of testssl.sh's --jsonfile.
type testsslFinding struct {
	ID, Severity, Finding string
}

// worstSeverities are what the site must not be given.
var worstSeverities = []string{"MEDIUM", "HIGH", "CRITICAL"}

// certificateOwners are findings about the certificate itself (the test CA's, here), which
// are its owner's to fix, not the site's.
func certificateOwners(id string) bool {
	return strings.HasPrefix(id, "cert") || strings.HasPrefix(id, "chain_of_trust") || strings.HasPrefix(id, "intermediate_cert") || strings.HasPrefix(id, "OCSP")
}

// testssl runs testssl.sh on the site for its protocols (-p), forward secrecy (-f),
// server preferences (-P), vulnerabilities (-U) and headers (-h), with the test CA
// trusted: only TLS 1.2 and 1.3 may be offered, and no finding of the site's may be
// MEDIUM or worse.
func (h *httpsLife) testssl(t *testing.T) {
	bin, err := exec.LookPath("testssl")
	if err != nil {
		testbed.Unavailable(t, "no testssl on PATH", "apt-get install -y testssl.sh")
	}
	dir := t.TempDir()
	caFile, report := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(caFile, []byte(h.ca.PEM), 0o644); err != nil {
		t.Fatal(err)
	}
	target := strings.TrimSuffix(strings.TrimPrefix(h.url, "https://"), "/")
	cmd := exec.Command(bin, "--quiet", "--color", "0", "--warnings", "off", "--ip", "127.0.0.1",
		"--add-ca", caFile, "--jsonfile", report, "-p", "-P", "-f", "-U", "-h", target)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("testssl output:\n%s", out)
	}
	raw, readErr := os.ReadFile(report)
	if readErr != nil {
		t.Fatalf("testssl wrote no report (%v): %v\n%s", err, readErr, out)
	}
	var findings []testsslFinding
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatal(err)
	}
	offered := map[string]string{}
	for _, f := range findings {
		switch {
		case slices.Contains([]string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"}, f.ID):
			offered[f.ID] = f.Finding
		case f.ID == "cipher_order":
			// Mozilla's intermediate profile lets the client choose among ciphers that are all
			// strong (ssl_prefer_server_ciphers off): testssl.sh counts that against it.
			t.Logf("testssl, as Mozilla's intermediate profile chooses: %s %s: %s", f.Severity, f.ID, f.Finding)
		case slices.Contains(worstSeverities, f.Severity) && !certificateOwners(f.ID):
			t.Errorf("testssl: %s %s: %s", f.Severity, f.ID, f.Finding)
		case f.Severity == "FATAL":
			t.Errorf("testssl could not finish: %s: %s", f.ID, f.Finding)
		}
	}
	for id, want := range map[string]string{"SSLv2": "not offered", "SSLv3": "not offered", "TLS1": "not offered", "TLS1_1": "not offered", "TLS1_2": "offered", "TLS1_3": "offered"} {
		if got := offered[id]; !strings.HasPrefix(got, want) {
			t.Errorf("testssl: %s %q, want %q", id, got, want)
		}
	}
	t.Logf("testssl: %d findings, none of the site's MEDIUM or worse", len(findings))
}
