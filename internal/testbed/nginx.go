package testbed

import (
	"os"
	"os/exec"
	"testing"
)

// HostNginx is the host's nginx binary (on PATH, else /usr/sbin/nginx, which PATH may lack
// for a non-root user), or Unavailable saying how to get it.
func HostNginx(t testing.TB) string {
	t.Helper()
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin
	}
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		Unavailable(t, "no nginx on this machine", "apt-get install -y nginx-light")
	}
	return bin
}
