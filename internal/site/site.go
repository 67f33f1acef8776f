// Package site is the stack's one component: it builds the app/ folder into an image,
// pushes it, runs it hardened and proves that the page is served.
package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	"github.com/example/custom-nginx/internal/engineplatform"
	"github.com/example/custom-nginx/internal/preflight"
	"github.com/example/custom-nginx/internal/smoke"
)

// Type is the component's resource type.
const Type = "customnginx:index:Site"

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
	// RunningName names the container, or the service in swarm mode: one per stack, since
	// the host port is fixed.
	RunningName string
	// PushCheck asks the registry whether Config's credentials may push to its repository
	// (pushcheck.Check); New calls it on `up` when pushing, before it registers anything.
	PushCheck func(ctx context.Context, cfg config.Config) error
	// EnginePlatform asks the engine Config deploys to for its platforms
	// (engineplatform.Of); New calls it when Config's platform is empty.
	EnginePlatform func(ctx context.Context, cfg config.Config) (engineplatform.Platforms, error)
}

// Site builds, pushes, runs and proves the site. Its children are fields, nil when the
// configuration leaves them out.
type Site struct {
	pulumi.ResourceState

	Image      *docker.Image
	Preflight  *local.Command        // proves a new build in a throwaway container
	Push       *docker.RegistryImage // when pushing
	PortHolder *docker.Container     // container mode: publishes the host port for nginx
	Container  *docker.Container     // container mode: nginx, in PortHolder's network
	Service    *docker.Service       // swarm mode
	Rollout    *local.Command        // swarm mode: waits until every task runs the new spec
	SmokeCheck *local.Command
	Variants   []Variant      // with platforms: the builds for the platforms other than the engine's
	Index      *local.Command // with platforms: writes the index under imageTag

	ImageID  pulumi.StringOutput // the build the site runs
	ImageRef pulumi.StringOutput // registry/repository@digest when pushed, else ImageID
	RepoURL  pulumi.StringOutput // where a person finds the pushed repository
	// PlatformRefs, with platforms, is each platform's registry/repository@digest.
	PlatformRefs pulumi.StringMapOutput
	URL          pulumi.StringOutput // where the smoke check found the page
}

// children registers the component's children, each named by its role and parented to it.
type children struct {
	ctx     *pulumi.Context
	name    string
	program string // this program's binary, which the checks run in a check mode
	parent  pulumi.ResourceOption
	// Children were once all named after the component: the alias moves an existing
	// stack's image, push and container to their role names without replacing them.
	formerly pulumi.ResourceOption
}

func (c children) named(role string) string { return c.name + "-" + role }

// running is what serves the site, and what makes the smoke check prove it again.
type running struct {
	resource pulumi.Resource
	rerun    pulumi.Array
}

// New registers the component and its children: the image, its preflight, the push (when
// pushing), the container or the swarm service with its rollout gate, and the smoke check.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Site, error) {
	pageSHA256, err := PageSHA256(args.AppDir)
	if err != nil {
		return nil, err
	}
	program, err := ProgramPath()
	if err != nil {
		return nil, err
	}
	// A refused push fails `up` here, with nothing built, pushed or replaced. A preview
	// stays offline: it builds and pushes nothing either.
	if args.Config.Push && !ctx.DryRun() {
		if err := args.PushCheck(ctx.Context(), args.Config); err != nil {
			return nil, err
		}
	}
	if args.Config, err = enginePlatform(ctx, args); err != nil {
		return nil, err
	}
	s := &Site{}
	if err := ctx.RegisterComponentResource(Type, name, s, opts...); err != nil {
		return nil, err
	}
	c := children{ctx: ctx, name: name, program: program, parent: pulumi.Parent(s),
		formerly: pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(name)}})}

	if err := s.build(c, args); err != nil {
		return nil, err
	}
	if err := s.preflight(c, args, pageSHA256); err != nil {
		return nil, err
	}
	pushed, err := s.push(c, args.Config)
	if err != nil {
		return nil, err
	}
	run := s.runContainer
	if args.Config.Mode == config.ModeSwarm {
		run = s.runService
	}
	serving, err := run(c, args, pushed)
	if err != nil {
		return nil, err
	}
	if err := s.check(c, args, pageSHA256, serving); err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{"url": s.URL, "imageRef": s.ImageRef}); err != nil {
		return nil, err
	}
	return s, nil
}

// enginePlatform is args.Config with an empty platform set to the engine's, asked through
// args.EnginePlatform; in a swarm whose nodes run several platforms, with platforms set to
// them all when it is empty. A preview never fails for an engine out of reach: it goes on
// with the provider's default, and says so.
func enginePlatform(ctx *pulumi.Context, args Args) (config.Config, error) {
	cfg := args.Config
	if cfg.Platform != "" {
		return cfg, nil
	}
	found, err := args.EnginePlatform(ctx.Context(), cfg)
	var unreachable *engineplatform.UnreachableError
	switch {
	case err == nil:
		cfg.Platform = found.Engine
	case ctx.DryRun() && errors.As(err, &unreachable):
		_ = ctx.Log.Warn(fmt.Sprintf("%v: the preview shows a build for the provider's default platform, `up` builds for the engine's", err), nil)
		if len(cfg.Platforms) > 0 {
			cfg.Platform = cfg.Platforms[0]
		}
		return cfg, nil
	default:
		return cfg, err
	}
	if len(cfg.Platforms) == 0 && len(found.Nodes) > 1 {
		cfg.Platforms = found.Nodes
	}
	return cfg, platformsListed(cfg, found)
}

// build registers the image of args.AppDir for the engine's platform, built and kept on
// the engine, and with platforms one for each other platform (buildVariants).
func (s *Site) build(c children, args Args) error {
	var err error
	s.Image, err = docker.NewImage(c.ctx, c.named("image"), imageArgs(args, args.Config.Platform), c.parent, c.formerly)
	if err != nil {
		return err
	}
	// With skipPush, repoDigest is the local image ID: it changes with every new build, and
	// it is what the engine reports back for a container, so a no-op `up` shows no diff.
	s.ImageID = s.Image.RepoDigest
	s.ImageRef = s.ImageID
	return s.buildVariants(c, args)
}

// imageArgs build args.AppDir for platform ("" for the provider's default, in a preview
// without an engine), tagged localImageName.
func imageArgs(args Args, platform string) *docker.ImageArgs {
	cfg := args.Config
	buildArgs := pulumi.StringMap{}
	if cfg.BaseImage != "" {
		buildArgs[BaseImageArg] = pulumi.String(cfg.BaseImage)
	}
	var p pulumi.StringPtrInput
	if platform != "" {
		p = pulumi.String(platform)
	}
	return &docker.ImageArgs{
		ImageName: pulumi.String(localImageName(cfg, platform)),
		// The push is its own resource, with credentials that stay out of the provider config.
		SkipPush: pulumi.Bool(true),
		Build: &docker.DockerBuildArgs{
			Context:        pulumi.String(args.AppDir),
			Dockerfile:     pulumi.String(path.Join(args.AppDir, "Dockerfile")), // same on every OS
			Platform:       p,
			Args:           buildArgs,
			BuilderVersion: docker.BuilderVersionBuilderBuildKit,
		},
	}
}

// preflight registers the check that proves each new build in a throwaway container on
// the same engine, before it is pushed or run: a broken build fails `up` with the site
// untouched.
func (s *Site) preflight(c children, args Args, pageSHA256 string) error {
	cfg := args.Config
	check := preflight.Check{DockerHost: cfg.DockerHost, SHA256: pageSHA256, HostIP: cfg.HostIP,
		SiteHost: cfg.SiteHost, Timeout: preflight.DefaultTimeout, Owner: args.RunningName}
	var err error
	s.Preflight, err = local.NewCommand(c.ctx, c.named("preflight"), &local.CommandArgs{
		// The provider appends create, the image ID, as the last argument.
		Interpreter: pulumi.ToStringArray(append([]string{c.program, preflight.Command}, check.Flags()...)),
		Create:      s.ImageID,
		Triggers:    pulumi.Array{s.ImageID},
	}, c.parent)
	return err
}

// push registers the push of the image when the config pushes, and returns what must
// succeed before anything runs the image: the preflight, and the push.
func (s *Site) push(c children, cfg config.Config) ([]pulumi.Resource, error) {
	proven := []pulumi.Resource{s.Preflight}
	if !cfg.Push {
		return proven, nil
	}
	var err error
	s.Push, err = docker.NewRegistryImage(c.ctx, c.named("push"), pushArgs(cfg, s.Image), c.parent, c.formerly,
		pulumi.DependsOn(proven), pulumi.AdditionalSecretOutputs([]string{"authConfig"}))
	if err != nil {
		return nil, err
	}
	s.RepoURL = pulumi.String(repoURL(cfg)).ToStringOutput()
	s.ImageRef = pulumi.Sprintf("%s/%s@%s", cfg.RegistryServer, cfg.Repository, s.Push.Sha256Digest)
	proven = append(proven, s.Push) // never run what failed to push
	if len(s.Variants) == 0 {
		return proven, nil
	}
	return s.publishIndex(c, cfg, proven)
}

// pushArgs push image to the registry with the config's credentials.
func pushArgs(cfg config.Config, image *docker.Image) *docker.RegistryImageArgs {
	return &docker.RegistryImageArgs{
		Name: image.ImageName,
		// Docker Hub refuses the registry DELETE API: destroy leaves the tag in place.
		KeepRemotely: pulumi.Bool(true),
		// Push again exactly when the build changed.
		Triggers: pulumi.StringMap{"imageId": image.RepoDigest},
		AuthConfig: &docker.RegistryImageAuthConfigArgs{
			Address:  pulumi.String(authAddress(cfg.RegistryServer)),
			Username: pulumi.String(cfg.RegistryUsername),
			Password: secret(cfg.RegistryPassword),
		},
	}
}

// check registers the smoke check: this program in its check mode proves that the site's
// URL serves the custom page, byte for byte, once serving is up.
func (s *Site) check(c children, args Args, pageSHA256 string, serving running) error {
	cfg := args.Config
	url := (&url.URL{Scheme: "http", Host: net.JoinHostPort(cfg.SiteHost, strconv.Itoa(cfg.HostPort)), Path: "/"}).String()
	check := smoke.Check{URL: url, SHA256: pageSHA256, Attempts: smoke.DefaultAttempts,
		Interval: smoke.DefaultInterval, RequestTimeout: smoke.DefaultRequestTimeout}
	var err error
	s.SmokeCheck, err = local.NewCommand(c.ctx, c.named("smoke-check"), &local.CommandArgs{
		// No shell in between, so the same argv runs on Linux, macOS and Windows. The
		// provider appends create, the URL, as the last argument.
		Interpreter: pulumi.ToStringArray(append([]string{c.program, smoke.Command}, check.Flags()...)),
		Create:      pulumi.String(check.URL),
		Triggers:    serving.rerun,
	}, c.parent, pulumi.DependsOn([]pulumi.Resource{serving.resource}))
	if err != nil {
		return err
	}
	s.URL = pulumi.String(url).ToStringOutput()
	return nil
}

// secret hands a credential to a resource input as a Pulumi secret: encrypted in the state,
// masked in the CLI's output.
func secret(password config.Secret) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(string(password))).(pulumi.StringOutput)
}

// localImageName is the name the build for platform is tagged with and the push sends:
// with platforms, each platform's tag is imageTag-os-arch, and imageTag names the index.
func localImageName(cfg config.Config, platform string) string {
	tag := cfg.ImageTag
	if len(cfg.Platforms) > 0 {
		tag += "-" + platformSlug(platform)
	}
	if !cfg.Push {
		return cfg.Repository + ":" + tag
	}
	return cfg.RegistryServer + "/" + cfg.Repository + ":" + tag
}

// authAddress is where the provider logs in: Docker Hub's registry API host, or the
// registry itself, over plain HTTP for loopback registries as Docker assumes.
func authAddress(server string) string {
	if server == config.DockerHub {
		return config.DockerHubRegistry
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

// PageSHA256 is the SHA-256 of the custom page in appDir, lowercase hex: what the checks
// prove is served.
func PageSHA256(appDir string) (string, error) {
	page, err := os.ReadFile(filepath.Join(appDir, PagePath))
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
