package engine

import (
	"slices"
	"testing"

	"github.com/docker/go-connections/nat"
)

// TestContainer: the engine-API form of the spec carries every setting of it.
func TestContainer(t *testing.T) {
	rt := Hardened
	cfg, host := rt.Container("sha256:abc", nat.PortBinding{HostIP: "127.0.0.1"})
	if cfg.Image != "sha256:abc" || cfg.User != rt.User || cfg.StopSignal != rt.StopSignal || *cfg.StopTimeout != int(rt.StopTimeout.Seconds()) {
		t.Errorf("config %+v does not run the image as the spec says", cfg)
	}
	if _, ok := cfg.ExposedPorts[rt.Port()]; !ok || rt.Port() != "8080/tcp" {
		t.Errorf("exposed ports %v, want %s", cfg.ExposedPorts, rt.Port())
	}
	if h := cfg.Healthcheck; !slices.Equal(h.Test, rt.Health.Test) || h.Interval != rt.Health.Interval || h.Timeout != rt.Health.Timeout ||
		h.StartPeriod != rt.Health.StartPeriod || h.Retries != rt.Health.Retries {
		t.Errorf("healthcheck %+v, want %+v", h, rt.Health)
	}
	if b := host.PortBindings[rt.Port()]; len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "" {
		t.Errorf("port bindings %v, want one on 127.0.0.1, port left to the engine", host.PortBindings)
	}
	if !host.ReadonlyRootfs || host.Tmpfs[rt.Tmpfs.Path] != rt.Tmpfs.Options() || !slices.Equal(host.CapDrop, rt.CapDrop) || !slices.Equal(host.SecurityOpt, rt.SecurityOpts) {
		t.Errorf("host config %+v is not hardened as the spec says", host)
	}
	if host.Memory != int64(rt.MemoryMB)<<20 || host.MemorySwap != host.Memory || len(host.Ulimits) != len(rt.Ulimits) {
		t.Errorf("memory %d, swap %d, ulimits %v: want %d MiB, no swap, %v", host.Memory, host.MemorySwap, host.Ulimits, rt.MemoryMB, rt.Ulimits)
	}
	if string(host.RestartPolicy.Name) != rt.Restart || host.LogConfig.Type != rt.LogDriver {
		t.Errorf("restart %q, log driver %q", host.RestartPolicy.Name, host.LogConfig.Type)
	}
}

func TestTmpfsOptions(t *testing.T) {
	if got, want := Hardened.Tmpfs.Options(), "rw,noexec,nosuid,nodev,size=16m,mode=1777"; got != want {
		t.Errorf("tmpfs options %q, want %q", got, want)
	}
}
