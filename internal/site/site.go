// Package site is the stack's one component: it builds the app/ folder into an image,
// pushes it, runs it hardened and proves that the page is served.
package site

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/subcommand"
)

// Type is the component's resource type.
const Type = "customnginx:index:Site"

// The Dockerfile's build args: BaseImageArg names its FROM; BuildPlatformArg the platform
// its config-check stage runs on, which BuildKit sets and the classic builder must be given.
const (
	BaseImageArg     = "BASE_IMAGE"
	BuildPlatformArg = "BUILDPLATFORM"
)

// PagePath is the custom page inside the build context; the smoke check proves it is served.
const PagePath = "html/index.html"

// Args are the component's inputs.
type Args struct {
	// Config is complete: validated, and with the engine's platforms filled in
	// (engine.Complete). New asks nothing of the engine or the registry.
	Config config.Config
	// AppDir is the build context with the Dockerfile, relative to the project so that
	// the Image's inputs are the same on every machine and a no-op `up` does not rebuild.
	AppDir string
	// NamePrefix begins the names of the engine objects, one set per stack, since the host
	// port is fixed: the containers, or the service in swarm mode.
	NamePrefix string
}

// Site builds, pushes, runs and proves the site. Its children are fields, nil when the
// configuration leaves them out.
type Site struct {
	pulumi.ResourceState

	Builds     []Build           // one per platform, the engine's first
	Preflight  *local.Command    // proves a new build in a throwaway container
	PushCheck  *local.Command    // when pushing: asks the registry before the build
	Index      *local.Command    // with platforms: writes the index under imageTag
	PortHolder *docker.Container // container mode: publishes the host port for nginx
	Nginx      *docker.Container // container mode: in PortHolder's network
	TLSVolume  *docker.Volume    // with HTTPS in container mode: the certificate's files
	Service    *docker.Service   // swarm mode
	TLSSecrets []*docker.Secret  // with HTTPS in swarm mode: the certificate's files
	// RolloutWait, in swarm mode, waits until every task runs the new spec.
	RolloutWait *local.Command
	SmokeCheck  *local.Command

	ImageID  pulumi.StringOutput // the engine's build: what a container runs
	ImageRef pulumi.StringOutput // registry/repository@digest when pushed (the index's with platforms), else ImageID
	RepoURL  pulumi.StringOutput // where a person finds the pushed repository
	// PlatformRefs, with platforms, is each platform's registry/repository@digest.
	PlatformRefs pulumi.StringMapOutput
	URL          pulumi.StringOutput // where the smoke check found the page
}

// Build is one platform's image and, when pushing, its push.
type Build struct {
	Platform string // "" for the provider's default, in a preview without an engine
	Image    *docker.Image
	Push     *docker.RegistryImage
}

// registration is what every child is registered with: the context, the component's name
// that begins the children's, the program's binary that the commands run, the parent.
type registration struct {
	ctx     *pulumi.Context
	name    string
	program string
	parent  pulumi.ResourceOption
	// Children were once all named after the component: the alias moves an existing
	// stack's image, push and port holder to their role names without replacing them.
	formerly pulumi.Alias
}

func (r registration) named(role string) string { return r.name + "-" + role }

// deployed is what the smoke check follows: the resource it waits on, and what makes it
// prove the site again.
type deployed struct {
	resource pulumi.Resource
	rerun    pulumi.Array
}

// New registers the component and its children: when pushing, the push check; an image per
// platform and its preflight; when pushing, the pushes and the index; the containers or the swarm
// service with its rollout wait; and the smoke check.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Site, error) {
	pageSHA256, err := PageSHA256(args.AppDir)
	if err != nil {
		return nil, err
	}
	program, err := ProgramPath()
	if err != nil {
		return nil, err
	}
	s := &Site{}
	if err := ctx.RegisterComponentResource(Type, name, s, opts...); err != nil {
		return nil, err
	}
	r := registration{ctx: ctx, name: name, program: program, parent: pulumi.Parent(s),
		formerly: pulumi.Alias{Name: pulumi.String(name)}}
	if args.Config.Push {
		if err := s.pushCheck(r, args); err != nil {
			return nil, err
		}
	}
	if err := s.build(r, args); err != nil {
		return nil, err
	}
	if err := s.tlsVolume(r, args); err != nil {
		return nil, err
	}
	if err := s.preflight(r, args, pageSHA256); err != nil {
		return nil, err
	}
	pushed, err := s.publish(r, args.Config)
	if err != nil {
		return nil, err
	}
	s.ImageRef = s.imageRef(args.Config)
	serving, err := s.run(r, args, pushed)
	if err != nil {
		return nil, err
	}
	if err := s.check(r, args.Config, pageSHA256, serving, pushed); err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{"url": s.URL, "imageRef": s.ImageRef}); err != nil {
		return nil, err
	}
	return s, nil
}

// run registers what serves the site. A container runs the build the preflight proved, by
// its ID on this engine, while it is pushed; swarm nodes pull the pushed image, so the
// service waits for the pushes.
func (s *Site) run(r registration, args Args, pushed []pulumi.Resource) (deployed, error) {
	proven := []pulumi.Resource{s.Preflight}
	if args.Config.Mode == config.ModeSwarm {
		return s.runService(r, args, append(proven, pushed...))
	}
	return s.runContainer(r, args, proven)
}

// build registers an image of args.AppDir for each platform, the engine's first, each built
// and kept on the engine. No RUN in the final stage: none needs emulation.
func (s *Site) build(r registration, args Args) error {
	for _, p := range platforms(args.Config) {
		role, opts := "image", []pulumi.ResourceOption{r.parent}
		if s.PushCheck != nil {
			opts = append(opts, pulumi.DependsOn([]pulumi.Resource{s.PushCheck}))
		}
		if p != args.Config.Platform {
			role += "-" + platformSlug(p)
		} else {
			opts = append(opts, pulumi.Aliases([]pulumi.Alias{r.formerly}))
		}
		img, err := docker.NewImage(r.ctx, r.named(role), imageArgs(args, p), opts...)
		if err != nil {
			return err
		}
		s.Builds = append(s.Builds, Build{Platform: p, Image: img})
	}
	// With skipPush, repoDigest is the local image ID: it changes with every new build, and
	// it is what the engine reports back for a container, so a no-op `up` shows no diff.
	s.ImageID = s.Builds[0].Image.RepoDigest
	return nil
}

// platforms are the platforms cfg builds for, the engine's first.
func platforms(cfg config.Config) []string {
	list := []string{cfg.Platform}
	for _, p := range cfg.Platforms {
		if p != cfg.Platform {
			list = append(list, p)
		}
	}
	return list
}

// platformSlug is platform in a name or a tag: linux/arm64/v8 → linux-arm64-v8.
func platformSlug(platform string) string { return strings.ReplaceAll(platform, "/", "-") }

// imageArgs build args.AppDir for platform ("" for the provider's default), tagged
// localImageName.
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

// command registers a command resource that runs this program's binary as the subcommand
// name. The command provider appends create to the interpreter's argv as its last argument:
// create is the subcommand's one argument, after flags, with no shell in between, so the
// same argv runs on Linux, macOS and Windows.
func (r registration) command(role, name string, flags pulumi.StringArrayInput, create pulumi.StringInput,
	triggers pulumi.Array, env pulumi.StringMap, opts ...pulumi.ResourceOption) (*local.Command, error) {
	argv := flags.ToStringArrayOutput().ApplyT(func(f []string) []string {
		return append([]string{r.program, name}, f...)
	}).(pulumi.StringArrayOutput)
	return local.NewCommand(r.ctx, r.named(role), &local.CommandArgs{
		Interpreter: argv,
		Create:      create,
		Triggers:    triggers,
		Environment: env,
	}, append([]pulumi.ResourceOption{r.parent}, opts...)...)
}

// preflight registers the check that proves each new build in a throwaway container on
// the same engine, before it is pushed or run: a broken build fails `up` with the site
// untouched. With HTTPS it puts the certificate's files in the TLS volume and serves them,
// and a new certificate is proven too before nginx runs it.
func (s *Site) preflight(r registration, args Args, pageSHA256 string) error {
	cfg := args.Config
	check := subcommand.Preflight{DockerHost: cfg.DockerHost, SHA256: pageSHA256, HostIP: cfg.HostIP,
		SiteHost: cfg.SiteHost, Timeout: subcommand.PreflightTimeout, Owner: args.NamePrefix}
	triggers := pulumi.Array{s.ImageID}
	var env pulumi.StringMap
	var opts []pulumi.ResourceOption
	if files := tlsFiles(cfg); files != nil {
		check.TLSCertificate, check.HTTPSOrigin, check.TrustedCA = cfg.TLS.Certificate, origin(cfg), cfg.TLS.TrustedCA
		env = pulumi.StringMap{subcommand.TLSKeyEnv: secret(cfg.TLS.Key)}
		triggers = append(triggers, pulumi.String(engine.TLSSHA256(files)))
		if s.TLSVolume != nil {
			check.TLSVolume = TLSName(args.NamePrefix, files)
			opts = append(opts, pulumi.DependsOn([]pulumi.Resource{s.TLSVolume}))
		}
	}
	var err error
	s.Preflight, err = r.command("preflight", subcommand.PreflightName, pulumi.ToStringArray(check.Flags()),
		s.ImageID, triggers, env, opts...)
	return err
}

// check registers the smoke check: it proves that the site's URL serves the custom page,
// byte for byte, once what serves it is deployed and every push is done, so that `up`
// succeeds only then.
func (s *Site) check(r registration, cfg config.Config, pageSHA256 string, serving deployed, pushed []pulumi.Resource) error {
	check := subcommand.SmokeCheck{URL: cfg.URL(), SHA256: pageSHA256, Attempts: subcommand.SmokeCheckAttempts,
		Interval: subcommand.SmokeCheckInterval, RequestTimeout: subcommand.SmokeCheckRequestTimeout, TrustedCA: cfg.TLS.TrustedCA}
	var err error
	s.SmokeCheck, err = r.command("smoke-check", subcommand.SmokeCheckName, pulumi.ToStringArray(check.Flags()),
		pulumi.String(check.URL), serving.rerun, nil, pulumi.DependsOn(append([]pulumi.Resource{serving.resource}, pushed...)))
	if err != nil {
		return err
	}
	s.URL = pulumi.String(check.URL).ToStringOutput()
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
	return cfg.Repo() + ":" + tag
}

// authAddress is where the provider logs in: the registry's API host, over plain HTTP for
// loopback registries as Docker assumes.
func authAddress(server string) string {
	if server == config.DockerHub {
		return config.APIHost(server)
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
	return cfg.Repo()
}

// dirSHA256 is the SHA-256 of every file under dir, by path and content, lowercase hex: it
// changes with whatever a build of dir can see.
func dirSHA256(dir string) (string, error) {
	sum := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(sum, "%s\x00%d\x00", filepath.ToSlash(rel), len(content))
		sum.Write(content)
		return nil
	})
	return hex.EncodeToString(sum.Sum(nil)), err
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
