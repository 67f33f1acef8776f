package site

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/engine"
)

// runContainer registers container mode's two containers. The port holder publishes the
// host port and runs nothing but sleep; a new build never replaces it. nginx runs in the
// holder's network namespace, listening with SO_REUSEPORT (app/nginx.conf), so a new
// build's nginx starts beside the old one and the old one is stopped, gracefully, only
// once the new one is proven: the port never goes unanswered.
func (s *Site) runContainer(r registration, args Args, proven []pulumi.Resource) (deployed, error) {
	cfg := args.Config
	var err error
	s.PortHolder, err = docker.NewContainer(r.ctx, r.named("port-holder"), portHolderArgs(args.NamePrefix+PortHolderSuffix, s.ImageID, cfg.HostIP, cfg.HostPort),
		r.parent, pulumi.DependsOn(proven),
		// Named site-container before, and once after the component: moved, not replaced.
		pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(r.named("container"))}, r.formerly}),
		// Any image will do for sleep: the first build's stays.
		pulumi.IgnoreChanges([]string{"image"}),
		// The host port is fixed: the old holder must free it before the new one starts.
		pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return deployed{}, err
	}
	name := pulumi.All(s.ImageID, s.PortHolder.ID()).ApplyT(func(v []any) string {
		return NginxName(args.NamePrefix, v[0].(string), string(v[1].(pulumi.ID)))
	}).(pulumi.StringOutput)
	s.Nginx, err = docker.NewContainer(r.ctx, r.named("nginx"), nginxArgs(name, s.ImageID, s.PortHolder.ID()),
		r.parent, pulumi.DependsOn(append(proven, s.PortHolder)),
		// Created before the old one is deleted. Said outright: for a resource with a name
		// of the program's, the provider asks for delete-before-replace.
		pulumi.DeleteBeforeReplace(false))
	if err != nil {
		return deployed{}, err
	}
	// A new container proves itself again.
	return deployed{resource: s.Nginx, rerun: pulumi.Array{s.Nginx.ID()}}, nil
}

// PortHolderSuffix ends the port holder's name: namePrefix-port.
const PortHolderSuffix = "-port"

// NginxName is unique to what the nginx container runs, so that a replacement can be
// created while the container it replaces still runs: namePrefix-<12 hex digits> of
// the image, the holder whose network it joins and the hardened runtime.
func NginxName(namePrefix, image, holder string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\n%s\n%+v", image, holder, engine.Hardened)))
	return namePrefix + "-" + hex.EncodeToString(sum[:6])
}

// portHolderArgs publish the host port for nginx, which joins the holder's network
// namespace. The holder runs sleep from image, hardened as nginx is, with no healthcheck
// (portHolderHealth) and SIGKILL to stop, since sleep as PID 1 ignores SIGQUIT.
func portHolderArgs(name string, image pulumi.StringInput, hostIP string, hostPort int) *docker.ContainerArgs {
	rt := engine.Hardened
	return &docker.ContainerArgs{
		Name:    pulumi.String(name),
		Image:   image,
		Command: pulumi.ToStringArray([]string{"sleep", "2147483647"}),
		Ports: docker.ContainerPortArray{docker.ContainerPortArgs{
			Internal: pulumi.Int(rt.ContainerPort),
			External: pulumi.Int(hostPort),
			Ip:       pulumi.String(hostIP),
		}},
		User:         pulumi.String(rt.User),
		ReadOnly:     pulumi.Bool(rt.ReadOnlyRoot),
		Capabilities: &docker.ContainerCapabilitiesArgs{Drops: pulumi.ToStringArray(rt.CapDrop)},
		SecurityOpts: pulumi.ToStringArray(rt.SecurityOpts),
		Memory:       pulumi.Int(portHolderMemoryMB),
		MemorySwap:   pulumi.Int(portHolderMemoryMB),
		Restart:      pulumi.String(rt.Restart),
		MustRun:      pulumi.Bool(true),
		StopSignal:   pulumi.String("SIGKILL"),
		LogDriver:    pulumi.String(rt.LogDriver),
		LogOpts:      pulumi.ToStringMap(rt.LogOpts),
		Healthcheck:  healthcheckArgs(portHolderHealth),
	}
}

// portHolderHealth turns the image's healthcheck off: it would probe nginx through the
// shared network. The engine fills a timing left zero from the image and reads it back, so
// the holder is given timings of its own: a new image's then shows no diff. They are the
// ones every holder has had, so no existing holder is replaced.
var portHolderHealth = engine.HealthSpec{Test: []string{"NONE"}, Interval: 2 * time.Second, Timeout: 2 * time.Second,
	StartPeriod: 10 * time.Second, Retries: 2}

// healthcheckArgs are h as a container's healthcheck input.
func healthcheckArgs(h engine.HealthSpec) *docker.ContainerHealthcheckArgs {
	return &docker.ContainerHealthcheckArgs{
		Tests:       pulumi.ToStringArray(h.Test),
		Interval:    pulumi.String(h.Interval.String()),
		Timeout:     pulumi.String(h.Timeout.String()),
		StartPeriod: pulumi.String(h.StartPeriod.String()),
		Retries:     pulumi.Int(h.Retries),
	}
}

// portHolderMemoryMB bounds the holder: sleep needs almost nothing.
const portHolderMemoryMB = 16

// nginxArgs run image's nginx, hardened, in the network namespace of the port
// holder, which publishes its port.
func nginxArgs(name, image pulumi.StringInput, holder pulumi.IDOutput) *docker.ContainerArgs {
	rt := engine.Hardened
	ulimits := docker.ContainerUlimitArray{}
	for _, u := range rt.Ulimits {
		ulimits = append(ulimits, docker.ContainerUlimitArgs{Name: pulumi.String(u.Name), Soft: pulumi.Int(u.Soft), Hard: pulumi.Int(u.Hard)})
	}
	return &docker.ContainerArgs{
		Name:         name,
		Image:        image,
		NetworkMode:  pulumi.Sprintf("container:%s", holder),
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
		Healthcheck:         healthcheckArgs(rt.Health),
		// The smoke check is the readiness gate (see engine.Hardened.Health).
		Wait: pulumi.Bool(false),
	}
}
