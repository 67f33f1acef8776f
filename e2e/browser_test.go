package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/example/custom-nginx/internal/testbed"
)

// TestPageInBrowser renders the page the hardened container serves in headless Chromium:
// styled, without console errors or CSP violations, no sideways scroll on a phone.
func TestPageInBrowser(t *testing.T) {
	onMachineEngine.join(t)
	// Checked before the engine work, so a machine without a browser skips at once.
	if _, err := testbed.FindBrowser(); err != nil {
		testbed.Unavailable(t, err.Error(), "apt-get install -y chromium")
	}
	e := testbed.RequireEngine(t)
	tag, _, _ := sharedApp(t, e)
	_, baseURL := e.RunHardened(t, tag)
	if _, err := testbed.WaitServed(baseURL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	testbed.CheckInBrowser(t, baseURL, appDir, screenshotDir(t, "image"))
}

// screenshotDir is where a test saves the pages it rendered: outside the test's temp dir,
// so a person can look at them afterwards.
func screenshotDir(t *testing.T, name string) string {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "custom-nginx-screenshots")
	}
	dir = filepath.Join(dir, name)
	t.Logf("screenshots go to %s (set SCREENSHOT_DIR to change)", dir)
	return dir
}
