// Package site is the stack's one component: it builds the app/ folder into an image,
// pushes it, runs it hardened and proves that the page is served.
package site

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/rollout"
	"github.com/example/custom-nginx/internal/smoke"
)

// BaseImageArg is the Dockerfile's build arg for its FROM.
const BaseImageArg = "BASE_IMAGE"

// PagePath is the custom page inside the build context; the smoke check proves it is served.
const PagePath = "html/index.html"

// Args are the component's inputs.
type Args struct {
	Config config.Config
	// AppDir is the build context with the Dockerfile, relative to the project so that
	// the Image's inputs are the same on every machine and a no-op `up` does not rebuild.
	AppDir string
	// ContainerName names the container; one per stack, since the host port is fixed.
	ContainerName string
	// Program is this program's binary as the smoke check runs it from the project folder
	// (see ProgramPath).
	Program string
	// DockerHost is the engine as the docker provider reaches it ("" for DOCKER_HOST or the
	// local engine): in swarm mode, the manager the rollout is watched on.
	DockerHost string
}

// Site builds, pushes, runs and proves the site. Its children are fields, nil when the
// configuration leaves them out.
type Site struct {
	pulumi.ResourceState

	Image      *docker.Image
	Push       *docker.RegistryImage // when pushing
	Container  *docker.Container     // container mode
	Service    *docker.Service       // swarm mode
	Rollout    *local.Command        // swarm mode: waits until every task runs the new spec
	SmokeCheck *local.Command

	ImageID  pulumi.StringOutput // the build the site runs
	ImageRef pulumi.StringOutput // registry/repository@digest when pushed, else ImageID
	RepoURL  pulumi.StringOutput // where a person finds the pushed repository
	URL      pulumi.StringOutput // where the smoke check found the page
}

// New registers the component and its children, each named by its role: the image, the
// push (when pushing), the container or the swarm service with its rollout gate, and the
// smoke check.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Site, error) {
	cfg := args.Config
	pageSHA256, err := fileSHA256(filepath.Join(args.AppDir, PagePath))
	if err != nil {
		return nil, err
	}

	s := &Site{}
	if err := ctx.RegisterComponentResource("customnginx:index:Site", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)
	// Children were once all named `name`: the alias moves an existing stack's resources to
	// their role names without replacing them.
	formerly := pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(name)}})

	buildArgs := pulumi.StringMap{}
	if cfg.BaseImage != "" {
		buildArgs[BaseImageArg] = pulumi.String(cfg.BaseImage)
	}
	var platform pulumi.StringPtrInput // none: the provider's default (see README)
	if cfg.Platform != "" {
		platform = pulumi.String(cfg.Platform)
	}
	s.Image, err = docker.NewImage(ctx, name+"-image", &docker.ImageArgs{
		ImageName: pulumi.String(localImageName(cfg)),
		// The push is its own resource, with credentials that stay out of the provider config.
		SkipPush: pulumi.Bool(true),
		Build: &docker.DockerBuildArgs{
			Context:        pulumi.String(args.AppDir),
			Dockerfile:     pulumi.String(path.Join(args.AppDir, "Dockerfile")), // same on every OS
			Platform:       platform,
			Args:           buildArgs,
			BuilderVersion: docker.BuilderVersionBuilderBuildKit,
		},
	}, parent, formerly)
	if err != nil {
		return nil, err
	}
	// With skipPush, repoDigest is the local image ID: it changes with every new build, and
	// it is what the engine reports back for a container, so a no-op `up` shows no diff.
	s.ImageID = s.Image.RepoDigest
	s.ImageRef = s.ImageID

	var pushed []pulumi.Resource // never run what failed to push
	if cfg.Push {
		s.Push, err = docker.NewRegistryImage(ctx, name+"-push", &docker.RegistryImageArgs{
			Name: s.Image.ImageName,
			// Docker Hub refuses the registry DELETE API: destroy leaves the tag in place.
			KeepRemotely: pulumi.Bool(true),
			// Push again exactly when the build changed.
			Triggers: pulumi.StringMap{"imageId": s.ImageID},
			AuthConfig: &docker.RegistryImageAuthConfigArgs{
				Address:  pulumi.String(authAddress(cfg.RegistryServer)),
				Username: pulumi.String(cfg.RegistryUsername),
				Password: secret(cfg.RegistryPassword),
			},
		}, parent, formerly, pulumi.AdditionalSecretOutputs([]string{"authConfig"}))
		if err != nil {
			return nil, err
		}
		pushed = append(pushed, s.Push)
		s.RepoURL = pulumi.String(repoURL(cfg)).ToStringOutput()
		s.ImageRef = pulumi.Sprintf("%s/%s@%s", cfg.RegistryServer, cfg.Repository, s.Push.Sha256Digest)
	}

	var running pulumi.Resource
	var rerunCheck pulumi.Array // what makes the smoke check prove the site again
	if cfg.Mode == config.ModeSwarm {
		auth := &docker.ServiceAuthArgs{
			ServerAddress: pulumi.String(cfg.RegistryServer),
			Username:      pulumi.String(cfg.RegistryUsername),
			Password:      secret(cfg.RegistryPassword),
		}
		s.Service, err = docker.NewService(ctx, name+"-service", serviceArgs(args.ContainerName, s.ImageRef, cfg, auth),
			parent, pulumi.DependsOn(pushed), pulumi.AdditionalSecretOutputs([]string{"auth"}))
		if err != nil {
			return nil, err
		}
		// A rolling update keeps the service: the checks follow the image it rolled out.
		rerunCheck = pulumi.Array{s.Service.ID(), s.ImageRef}
		s.Rollout, err = local.NewCommand(ctx, name+"-rollout", &local.CommandArgs{
			// This program in its rollout check mode (see package rollout), the service's
			// name appended as the last argument.
			Interpreter: pulumi.ToStringArray(append([]string{args.Program, rollout.Command}, rollout.Flags(args.DockerHost, convergeTimeout)...)),
			Create:      s.Service.Name,
			Triggers:    rerunCheck,
		}, parent, pulumi.DependsOn([]pulumi.Resource{s.Service}))
		if err != nil {
			return nil, err
		}
		running = s.Rollout
	} else {
		s.Container, err = docker.NewContainer(ctx, name+"-container", containerArgs(args.ContainerName, s.ImageID, cfg.HostIP, cfg.HostPort),
			parent, formerly, pulumi.DependsOn(pushed),
			// The host port is fixed: the old container must free it before the new one starts.
			pulumi.DeleteBeforeReplace(true))
		if err != nil {
			return nil, err
		}
		running = s.Container
		rerunCheck = pulumi.Array{s.Container.ID()} // a new container proves itself again
	}

	url := (&url.URL{Scheme: "http", Host: net.JoinHostPort(cfg.SiteHost, strconv.Itoa(cfg.HostPort)), Path: "/"}).String()
	check := smoke.Check{URL: url, SHA256: pageSHA256, Attempts: smoke.DefaultAttempts,
		Interval: smoke.DefaultInterval, RequestTimeout: smoke.DefaultRequestTimeout}
	s.SmokeCheck, err = local.NewCommand(ctx, name+"-smoke-check", &local.CommandArgs{
		// This program in its check mode, with no shell in between, so the same argv runs
		// on Linux, macOS and Windows. The provider appends create, the URL, as the last argument.
		Interpreter: pulumi.ToStringArray(append([]string{args.Program, smoke.Command}, check.Flags()...)),
		Create:      pulumi.String(check.URL),
		Triggers:    rerunCheck,
	}, parent, pulumi.DependsOn([]pulumi.Resource{running}))
	if err != nil {
		return nil, err
	}
	s.URL = pulumi.String(url).ToStringOutput()

	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{"url": s.URL, "imageRef": s.ImageRef}); err != nil {
		return nil, err
	}
	return s, nil
}

// secret hands a credential to a resource input as a Pulumi secret: encrypted in the state,
// masked in the CLI's output.
func secret(password config.Secret) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(string(password))).(pulumi.StringOutput)
}

func containerArgs(name string, image pulumi.StringInput, hostIP string, hostPort int) *docker.ContainerArgs {
	rt := Runtime
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
		// The smoke check is the readiness gate (see Runtime.Health).
		Wait: pulumi.Bool(false),
	}
}

// localImageName is the name the build is tagged with and the push sends.
func localImageName(cfg config.Config) string {
	if !cfg.Push {
		return cfg.Repository + ":" + cfg.ImageTag
	}
	return cfg.RegistryServer + "/" + cfg.Repository + ":" + cfg.ImageTag
}

// authAddress is where the provider logs in: Docker Hub's registry API host, or the
// registry itself, over plain HTTP for loopback registries as Docker assumes.
func authAddress(server string) string {
	if server == config.DockerHub {
		return "registry-1.docker.io"
	}
	host := server
	if i := strings.LastIndex(server, ":"); i > strings.LastIndex(server, "]") {
		host = server[:i]
	}
	switch host {
	case "localhost", "127.0.0.1", "[::1]":
		return "http://" + server
	}
	return server
}

// repoURL is where a person finds the pushed repository.
func repoURL(cfg config.Config) string {
	if cfg.RegistryServer == config.DockerHub {
		return "https://hub.docker.com/r/" + cfg.Repository
	}
	return cfg.RegistryServer + "/" + cfg.Repository
}

func fileSHA256(path string) (string, error) {
	page, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the custom page: %w", err)
	}
	sum := sha256.Sum256(page)
	return hex.EncodeToString(sum[:]), nil
}

// ProgramPath is this program's binary relative to the working directory (the project
// folder), with forward slashes: with Pulumi.yaml's buildTarget it stays the same from run
// to run, machine to machine and OS to OS, so a no-op `up` leaves the smoke check alone.
func ProgramPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(wd, exe)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}
