package site

import (
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/hardened"
)

// runContainer registers the container mode's one container, hardened, on the engine.
func (s *Site) runContainer(c children, args Args, pushed []pulumi.Resource) (running, error) {
	cfg := args.Config
	var err error
	s.Container, err = docker.NewContainer(c.ctx, c.named("container"), containerArgs(args.RunningName, s.ImageID, cfg.HostIP, cfg.HostPort),
		c.parent, c.formerly, pulumi.DependsOn(pushed),
		// The host port is fixed: the old container must free it before the new one starts.
		pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return running{}, err
	}
	// A new container proves itself again.
	return running{resource: s.Container, rerun: pulumi.Array{s.Container.ID()}}, nil
}

func containerArgs(name string, image pulumi.StringInput, hostIP string, hostPort int) *docker.ContainerArgs {
	rt := hardened.Runtime
	ulimits := docker.ContainerUlimitArray{}
	for _, u := range rt.Ulimits {
		ulimits = append(ulimits, docker.ContainerUlimitArgs{Name: pulumi.String(u.Name), Soft: pulumi.Int(u.Soft), Hard: pulumi.Int(u.Hard)})
	}
	return &docker.ContainerArgs{
		Name:  pulumi.String(name),
		Image: image,
		Ports: docker.ContainerPortArray{docker.ContainerPortArgs{
			Internal: pulumi.Int(rt.ContainerPort),
			External: pulumi.Int(hostPort),
			Ip:       pulumi.String(hostIP),
		}},
		User:         pulumi.String(rt.User),
		ReadOnly:     pulumi.Bool(rt.ReadOnlyRoot),
		Tmpfs:        pulumi.StringMap{rt.Tmpfs.Path: pulumi.String(rt.Tmpfs.Options())},
		Capabilities: &docker.ContainerCapabilitiesArgs{Drops: pulumi.ToStringArray(rt.CapDrop)},
		SecurityOpts: pulumi.ToStringArray(rt.SecurityOpts),
		Memory:       pulumi.Int(rt.MemoryMB),
		// Without memorySwap the provider shows a diff on every `up`.
		MemorySwap:          pulumi.Int(rt.MemoryMB),
		Ulimits:             ulimits,
		Restart:             pulumi.String(rt.Restart),
		MustRun:             pulumi.Bool(true),
		StopSignal:          pulumi.String(rt.StopSignal),
		StopTimeout:         pulumi.Int(int(rt.StopTimeout.Seconds())),
		DestroyGraceSeconds: pulumi.Int(int(rt.StopTimeout.Seconds())),
		LogDriver:           pulumi.String(rt.LogDriver),
		LogOpts:             pulumi.ToStringMap(rt.LogOpts),
		Healthcheck: &docker.ContainerHealthcheckArgs{
			Tests:       pulumi.ToStringArray(rt.Health.Test),
			Interval:    pulumi.String(rt.Health.Interval.String()),
			Timeout:     pulumi.String(rt.Health.Timeout.String()),
			StartPeriod: pulumi.String(rt.Health.StartPeriod.String()),
			Retries:     pulumi.Int(rt.Health.Retries),
		},
		// The smoke check is the readiness gate (see hardened.Runtime.Health).
		Wait: pulumi.Bool(false),
	}
}
