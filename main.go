// The Pulumi program: read and validate config, create the site, export its outputs.
package main

import (
	_ "embed"
	"os"

	"github.com/hashicorp/go-multierror"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/smoke"
)

// projectFile holds the declared config defaults (see config.Defaults).
//
//go:embed Pulumi.yaml
var projectFile []byte

func main() {
	// The smoke check runs this binary again, in its check mode (see site.New).
	if len(os.Args) > 1 && os.Args[1] == smoke.Command {
		os.Exit(smoke.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	pulumi.Run(func(ctx *pulumi.Context) error {
		outputs, err := stack(ctx)
		for name, value := range outputs {
			ctx.Export(name, value)
		}
		return eachProblem(err)
	})
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

// stack declares the stack and returns its outputs.
func stack(ctx *pulumi.Context) (pulumi.Map, error) {
	defaults, err := config.Defaults(projectFile)
	if err != nil {
		return nil, err
	}
	// The engine the docker provider talks to: its host config, else DOCKER_HOST.
	dockerHost, ok := ctx.GetConfig("docker:host")
	if !ok {
		dockerHost = os.Getenv("DOCKER_HOST")
	}
	cfg, err := config.Load(contextSource{ctx}, defaults, dockerHost)
	if err != nil {
		return nil, err // before any resource is registered: nothing is created
	}

	program, err := site.ProgramPath()
	if err != nil {
		return nil, err
	}
	s, err := site.New(ctx, "site", site.Args{
		Config:        cfg,
		AppDir:        "app",
		ContainerName: ctx.Project() + "-" + ctx.Stack(),
		Program:       program,
	})
	if err != nil {
		return nil, err
	}

	return s.Outputs(), nil
}

// contextSource reads the project's config keys from the Pulumi context.
type contextSource struct{ ctx *pulumi.Context }

func (s contextSource) Get(key string) (string, bool) {
	return s.ctx.GetConfig(s.ctx.Project() + ":" + key)
}

func (s contextSource) IsSecret(key string) bool {
	return s.ctx.IsConfigSecret(s.ctx.Project() + ":" + key)
}
