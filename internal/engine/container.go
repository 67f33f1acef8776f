package engine

import (
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// Port is the container port as the engine names it.
func (s Runtime) Port() nat.Port { return nat.Port(fmt.Sprintf("%d/tcp", s.ContainerPort)) }

// Container is the spec in the engine API's terms, for image, with the container port
// published as publish says (HostPort "" or "0": a free port the engine picks).
func (s Runtime) Container(image string, publish nat.PortBinding) (*container.Config, *container.HostConfig) {
	stopTimeout := int(s.StopTimeout.Seconds())
	var ulimits []*container.Ulimit
	for _, u := range s.Ulimits {
		ulimits = append(ulimits, &container.Ulimit{Name: u.Name, Soft: int64(u.Soft), Hard: int64(u.Hard)})
	}
	cfg := &container.Config{
		Image:        image,
		User:         s.User,
		ExposedPorts: nat.PortSet{s.Port(): struct{}{}},
		StopSignal:   s.StopSignal,
		StopTimeout:  &stopTimeout,
		Healthcheck: &container.HealthConfig{
			Test:        s.Health.Test,
			Interval:    s.Health.Interval,
			Timeout:     s.Health.Timeout,
			StartPeriod: s.Health.StartPeriod,
			Retries:     s.Health.Retries,
		},
	}
	hostCfg := &container.HostConfig{
		PortBindings:   nat.PortMap{s.Port(): {publish}},
		ReadonlyRootfs: s.ReadOnlyRoot,
		Tmpfs:          map[string]string{s.Tmpfs.Path: s.Tmpfs.Options()},
		CapDrop:        s.CapDrop,
		SecurityOpt:    s.SecurityOpts,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(s.Restart)},
		LogConfig:      container.LogConfig{Type: s.LogDriver, Config: s.LogOpts},
		Resources: container.Resources{
			Memory:     int64(s.MemoryMB) << 20,
			MemorySwap: int64(s.MemoryMB) << 20,
			Ulimits:    ulimits,
		},
	}
	return cfg, hostCfg
}
