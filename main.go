// The Pulumi program: read and validate config, create the site, export its outputs.
package main

import (
	"os"

	"github.com/hashicorp/go-multierror"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/rollout"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/smoke"
)

func main() {
	// The site's checks run this binary again, in a check mode (see site.New).
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case smoke.Command:
			os.Exit(smoke.Main(os.Args[2:], os.Stdout, os.Stderr))
		case rollout.Command:
			os.Exit(rollout.Main(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg, s, err := newSite(ctx)
		if err != nil {
			return err
		}
		exportOutputs(ctx.Export, cfg, s)
		return nil
	})
}

// exportOutputs declares what `pulumi stack output` shows (export is ctx.Export; the tests
// pass a recorder).
func exportOutputs(export func(string, pulumi.Input), cfg config.Config, s *site.Site) {
	export("url", s.URL)
	export("imageId", s.ImageID)
	export("imageRef", s.ImageRef)
	export("smokeCheck", s.SmokeCheck.Stdout)
	if s.Push != nil {
		export("repoUrl", s.RepoURL)
	}
	if s.Container != nil {
		export("containerName", s.Container.Name)
	}
	if s.Service != nil {
		export("serviceName", s.Service.Name)
		if cfg.ServiceMode == config.ServiceReplicated { // a global service runs one task per node
			export("replicas", pulumi.Int(cfg.Replicas))
		}
	}
}

// newSite loads and validates the config, then creates the one component.
func newSite(ctx *pulumi.Context) (config.Config, *site.Site, error) {
	// The engine the docker provider talks to: its host config, else DOCKER_HOST.
	dockerHost, ok := ctx.GetConfig("docker:host")
	if !ok {
		dockerHost = os.Getenv("DOCKER_HOST")
	}
	cfg, err := config.Load(contextSource{ctx}, dockerHost)
	if err != nil {
		return cfg, nil, eachProblem(err) // before any resource is registered: nothing is created
	}
	program, err := site.ProgramPath()
	if err != nil {
		return cfg, nil, err
	}
	s, err := site.New(ctx, "site", site.Args{
		Config:        cfg,
		AppDir:        "app",
		ContainerName: ctx.Project() + "-" + ctx.Stack(),
		Program:       program,
		DockerHost:    dockerHost,
	})
	return cfg, s, err
}

// eachProblem hands the SDK every problem of a joined error as an error of its own. Run
// reports the program's error through go-multierror, which counts and bullets only errors
// of its own type: a joined error would read "1 error occurred" above three problems.
func eachProblem(err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return multierror.Append(nil, joined.Unwrap()...)
	}
	return err
}

// contextSource reads the project's config keys from the Pulumi context.
type contextSource struct{ ctx *pulumi.Context }

func (s contextSource) Get(key string) (string, bool) {
	return s.ctx.GetConfig(s.ctx.Project() + ":" + key)
}

func (s contextSource) IsSecret(key string) bool {
	return s.ctx.IsConfigSecret(s.ctx.Project() + ":" + key)
}
