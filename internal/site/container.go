package site

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
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
	s.PortHolder, err = docker.NewContainer(r.ctx, r.named("port-holder"), portHolderArgs(args.NamePrefix+PortHolderSuffix, s.ImageID, cfg),
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
	files := tlsFiles(cfg)
	name := pulumi.All(s.ImageID, s.PortHolder.ID()).ApplyT(func(v []any) string {
		return NginxName(args.NamePrefix, v[0].(string), string(v[1].(pulumi.ID)), files)
	}).(pulumi.StringOutput)
	var tlsVolume docker.ContainerVolumeArray
	if s.TLSVolume != nil {
		tlsVolume = docker.ContainerVolumeArray{docker.ContainerVolumeArgs{
			VolumeName: s.TLSVolume.Name, ContainerPath: pulumi.String(engine.TLSDir), ReadOnly: pulumi.Bool(true)}}
	}
	s.Nginx, err = docker.NewContainer(r.ctx, r.named("nginx"), nginxArgs(name, s.ImageID, s.PortHolder.ID(), tlsVolume),
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
// the image, the holder whose network it joins, the hardened runtime and, with HTTPS, the
// TLS files (a new certificate is a new container).
func NginxName(namePrefix, image, holder string, files []engine.File) string {
	what := fmt.Sprintf("%s\n%s\n%+v", image, holder, engine.Hardened)
	if len(files) > 0 {
		what += "\n" + engine.TLSSHA256(files)
	}
	sum := sha256.Sum256([]byte(what))
	return namePrefix + "-" + hex.EncodeToString(sum[:6])
}

// tlsFiles are the files nginx serves HTTPS with, none for plain HTTP.
func tlsFiles(cfg config.Config) []engine.File {
	if !cfg.TLS.Enabled() {
		return nil
	}
	return engine.TLSFiles(cfg.TLS.Certificate, string(cfg.TLS.Key), origin(cfg))
}

// origin is where plain HTTP redirects to: the site's URL without its path.
func origin(cfg config.Config) string { return strings.TrimSuffix(cfg.URL(), "/") }

// TLSName names the volume (container mode) or begins the names of the Swarm secrets that
// hold files: namePrefix-tls-<12 hex digits> of what they hold, so a new certificate goes
// into new ones while nginx still serves the old.
func TLSName(namePrefix string, files []engine.File) string {
	return namePrefix + "-tls-" + engine.TLSSHA256(files)[:12]
}

// tlsVolume registers, with HTTPS in container mode, the volume the preflight fills with the certificate's
// files and nginx mounts read-only. The provider's uploads cannot fill it: they extract at
// the container's root, which is read-only.
func (s *Site) tlsVolume(r registration, args Args) error {
	files := tlsFiles(args.Config)
	if files == nil || args.Config.Mode == config.ModeSwarm {
		return nil
	}
	var err error
	s.TLSVolume, err = docker.NewVolume(r.ctx, r.named("tls"), &docker.VolumeArgs{Name: pulumi.String(TLSName(args.NamePrefix, files))},
		r.parent, pulumi.DeleteBeforeReplace(false)) // the old one stays until its nginx is gone
	return err
}

// portHolderArgs publish the host ports for nginx, which joins the holder's network
// namespace: hostPort and, with HTTPS, httpsPort. The holder runs sleep from image,
// hardened as nginx is, with no healthcheck (portHolderHealth) and SIGKILL to stop, since
// sleep as PID 1 ignores SIGQUIT.
func portHolderArgs(name string, image pulumi.StringInput, cfg config.Config) *docker.ContainerArgs {
	rt := engine.Hardened
	ports := docker.ContainerPortArray{docker.ContainerPortArgs{
		Internal: pulumi.Int(rt.ContainerPort),
		External: pulumi.Int(cfg.HostPort),
		Ip:       pulumi.String(cfg.HostIP),
	}}
	if cfg.TLS.Enabled() {
		ports = append(ports, docker.ContainerPortArgs{
			Internal: pulumi.Int(engine.HTTPSPort),
			External: pulumi.Int(cfg.HTTPSPort),
			Ip:       pulumi.String(cfg.HostIP),
		})
	}
	return &docker.ContainerArgs{
		Name:         pulumi.String(name),
		Image:        image,
		Command:      pulumi.ToStringArray([]string{"sleep", "2147483647"}),
		Ports:        ports,
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
// holder, which publishes its ports; with HTTPS, tlsVolume mounts the certificate's files.
func nginxArgs(name, image pulumi.StringInput, holder pulumi.IDOutput, tlsVolume docker.ContainerVolumeArray) *docker.ContainerArgs {
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
		Wait:    pulumi.Bool(false),
		Volumes: tlsVolume,
	}
}
