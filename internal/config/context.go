package config

import (
	"os"

	"github.com/hashicorp/go-multierror"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// FromContext loads the project's config from the Pulumi context, for the engine the
// docker provider deploys to: its host config docker:host, else DOCKER_HOST. It shows the
// config's warnings.
func FromContext(ctx *pulumi.Context) (Config, error) {
	dockerHost, ok := ctx.GetConfig("docker:host")
	if !ok {
		dockerHost = os.Getenv("DOCKER_HOST")
	}
	cfg, err := Load(contextSource{ctx}, dockerHost)
	for _, w := range cfg.Warnings {
		_ = ctx.Log.Warn(w, nil)
	}
	return cfg, eachProblem(err)
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
