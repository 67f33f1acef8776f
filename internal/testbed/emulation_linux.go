//go:build linux

package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The binfmt_misc pieces EmulateArm64 uses: Debian's qemu-user-static and its own
// registration, whose magic and mask it takes.
const (
	binfmtDir      = "/proc/sys/fs/binfmt_misc"
	qemuAarch64    = "/usr/bin/qemu-aarch64-static"
	qemuAarch64Fmt = "/usr/lib/binfmt.d/qemu-aarch64.conf"
	binfmtName     = "custom-nginx-test-aarch64"
)

// EmulateArm64 lets this machine's kernel run arm64 binaries, in containers too, until the
// test ends: qemu-user-static registered through binfmt_misc with the F flag (the kernel
// opens the interpreter now, so any mount namespace can use it), unregistered afterwards.
// An aarch64 handler the machine already has is used as it is and left alone. It needs
// root and qemu-user-static: without them the test is skipped (fails under CI).
func EmulateArm64(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "registering qemu through binfmt_misc needs root", "run the tests as root")
	}
	for _, need := range []string{qemuAarch64, qemuAarch64Fmt} {
		if _, err := os.Stat(need); err != nil {
			Unavailable(t, "no "+need+" to run arm64 binaries", "apt-get install -y qemu-user-static")
		}
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		if err := unix.Mount("binfmt_misc", binfmtDir, "binfmt_misc", 0, ""); err != nil {
			t.Fatalf("mounting binfmt_misc on %s: %v", binfmtDir, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(binfmtDir, 0) })
	}
	if name, ok := aarch64Handler(); ok {
		t.Logf("arm64 binaries run through the machine's own binfmt_misc handler %s", name)
		return
	}
	conf, err := os.ReadFile(qemuAarch64Fmt)
	if err != nil {
		t.Fatal(err)
	}
	// :name:type:offset:magic:mask:interpreter:flags
	fields := strings.Split(strings.TrimSpace(string(conf)), ":")
	if len(fields) != 8 {
		t.Fatalf("%s is not one binfmt_misc registration: %q", qemuAarch64Fmt, conf)
	}
	rule := fmt.Sprintf(":%s:M::%s:%s:%s:F", binfmtName, fields[4], fields[5], qemuAarch64)
	if err := os.WriteFile(filepath.Join(binfmtDir, "register"), []byte(rule), 0); err != nil {
		t.Fatalf("registering %s for arm64 binaries: %v", qemuAarch64, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(binfmtDir, binfmtName), []byte("-1"), 0); err != nil {
			t.Errorf("unregistering %s: %v", binfmtName, err)
		}
	})
	t.Logf("arm64 binaries run through %s (binfmt_misc %s, flag F) until the test ends", qemuAarch64, binfmtName)
}

// aarch64Handler is an enabled binfmt_misc handler that already runs arm64 binaries
// through qemu, other than this package's.
func aarch64Handler() (string, bool) {
	entries, err := os.ReadDir(binfmtDir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(binfmtDir, e.Name()))
		if err == nil && e.Name() != binfmtName && strings.HasPrefix(string(b), "enabled") && strings.Contains(string(b), "qemu-aarch64") {
			return e.Name(), true
		}
	}
	return "", false
}
