package testbed

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TrustingCA is a browser option that makes Chromium trust caPEM as a root, as a company
// CA installed on a machine is: in an NSS database of the browser's own (Chromium on Linux
// reads trust anchors a user adds from $HOME/.pki/nssdb), under a HOME removed with the
// test. It calls Unavailable without NSS's certutil.
func TrustingCA(t testing.TB, caPEM string) chromedp.ExecAllocatorOption {
	t.Helper()
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		Unavailable(t, "no certutil on PATH (NSS's tool, to make the browser trust the test CA)", "apt-get install -y libnss3-tools")
	}
	home := t.TempDir()
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	caFile := filepath.Join(home, "ca.pem")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, []byte(caPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", db, "--empty-password"},
		{"-A", "-d", db, "-n", "custom-nginx test CA", "-t", "C,,", "-i", caFile},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %q: %v\n%s", args, err, out)
		}
	}
	return chromedp.Env("HOME=" + home)
}
