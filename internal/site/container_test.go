package site_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/pulumimock"
)

func TestContainerRunsHardened(t *testing.T) {
	c := deploy(t, pushConfig(t, nil)).rec.Named(t, "site-nginx").Inputs
	rt := engine.Hardened
	for key, want := range map[string]string{
		"user":                rt.User,
		"readOnly":            fmt.Sprint(rt.ReadOnlyRoot),
		"restart":             rt.Restart,
		"mustRun":             "true",
		"stopSignal":          rt.StopSignal,
		"memory":              fmt.Sprint(rt.MemoryMB),
		"memorySwap":          fmt.Sprint(rt.MemoryMB), // equal to memory: no permanent diff, no swap
		"destroyGraceSeconds": fmt.Sprint(rt.StopTimeout.Seconds()),
		"wait":                "false", // the smoke check is the gate
	} {
		if got := pulumimock.Plain(t, c, key); got != want {
			t.Errorf("Container %s = %q, want %q", key, got, want)
		}
	}
	if got := pulumimock.Plain(t, c, `tmpfs["/tmp"]`); got != rt.Tmpfs.Options() || !strings.Contains(got, "noexec") || !strings.Contains(got, "size=") {
		t.Errorf("tmpfs /tmp options %q, want %q", got, rt.Tmpfs.Options())
	}
	if got := strings.Join(pulumimock.StringList(c["capabilities"].ObjectValue(), "drops"), ","); got != strings.Join(rt.CapDrop, ",") {
		t.Errorf("capabilities dropped: %q, want %q", got, rt.CapDrop)
	}
	if got := strings.Join(pulumimock.StringList(c, "securityOpts"), ","); got != strings.Join(rt.SecurityOpts, ",") {
		t.Errorf("securityOpts %q, want %q", got, rt.SecurityOpts)
	}
	limits := map[string]float64{}
	for _, u := range c["ulimits"].ArrayValue() {
		limits[u.ObjectValue()["name"].StringValue()] = u.ObjectValue()["hard"].NumberValue()
	}
	if limits["nproc"] == 0 || limits["nofile"] == 0 {
		t.Errorf("ulimits %v: want nproc (the process limit) and nofile", limits)
	}

	hc := c["healthcheck"].ObjectValue()
	if got := strings.Join(pulumimock.StringList(hc, "tests"), " "); got != strings.Join(rt.Health.Test, " ") {
		t.Errorf("healthcheck test %q", got)
	}
	// The image's healthcheck: nothing acts on it in container mode, so it runs rarely.
	for key, want := range map[string]string{"interval": "30s", "timeout": "2s", "startPeriod": "10s", "retries": "2"} {
		if got := pulumimock.Plain(t, hc, key); got != want {
			t.Errorf("healthcheck %s = %q, want %q", key, got, want)
		}
	}
}

// TestPlatformAndWhereTheSiteIs: platform reaches the build; hostIp the port binding; the
// url and the smoke check use siteHost, a one-address hostIp, or the remote engine's host.
func TestPlatformAndWhereTheSiteIs(t *testing.T) {
	tests := []struct {
		name         string
		values       map[string]string
		dockerHost   string
		wantPlatform string
		wantIP       string
		wantURL      string
	}{
		{"defaults", map[string]string{}, "", enginePlatform, "0.0.0.0", "http://localhost:8080/"},
		{"arm64 for another server", map[string]string{config.KeyPlatform: "linux/arm64"}, "", "linux/arm64", "0.0.0.0", "http://localhost:8080/"},
		{"this host only", map[string]string{config.KeyHostIP: "127.0.0.1"}, "", enginePlatform, "127.0.0.1", "http://127.0.0.1:8080/"},
		{"remote engine over tcp", map[string]string{}, "tcp://192.0.2.7:2376", enginePlatform, "0.0.0.0", "http://192.0.2.7:8080/"},
		{"remote engine over ssh, IPv6", map[string]string{}, "ssh://deploy@[2001:db8::7]", enginePlatform, "0.0.0.0", "http://[2001:db8::7]:8080/"},
		{"siteHost over the engine's host", map[string]string{config.KeySiteHost: "www.example.com"}, "tcp://192.0.2.7:2376", enginePlatform, "0.0.0.0", "http://www.example.com:8080/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pulumimock.NewStackConfig(t, projectRoot, pulumimock.With(map[string]string{config.KeyPush: "false"}, tt.values)).Load(t, tt.dockerHost)
			d := deploy(t, cfg)
			if got := pulumimock.Plain(t, d.rec.One(t, pulumimock.TypeImage).Inputs, "build.platform"); got != tt.wantPlatform {
				t.Errorf("build.platform %q, want %q", got, tt.wantPlatform)
			}
			port := d.rec.Named(t, "site-port-holder").Inputs["ports"].ArrayValue()[0].ObjectValue()
			if got := port["ip"].StringValue(); got != tt.wantIP {
				t.Errorf("port published on %q, want %q", got, tt.wantIP)
			}
			if got := d.outputs["url"]; got != tt.wantURL {
				t.Errorf("url %v, want %s", got, tt.wantURL)
			}
			if got := smokeCheckOf(t, d.rec.Named(t, "site-smoke-check")).URL; got != tt.wantURL {
				t.Errorf("the smoke check fetches %s, want %s", got, tt.wantURL)
			}
		})
	}
}
