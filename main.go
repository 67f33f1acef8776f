// The Pulumi program: read and validate config, create the site, export its outputs.
package main

import (
	"context"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineplatform"
	"github.com/example/custom-nginx/internal/pushcheck"
	"github.com/example/custom-nginx/internal/site"
)

func main() {
	// The site's checks run this binary again, in a check mode.
	if code, ok := site.CheckMode(os.Args[1:], os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg, s, err := newSite(ctx, pushcheck.Check, engineplatform.Of)
		if err != nil {
			return err
		}
		exportOutputs(ctx.Export, cfg, s)
		return nil
	})
}

// newSite loads and validates the config, then creates the one component; pushCheck asks
// the registry and enginePlatform the engine (the tests pass their own).
func newSite(ctx *pulumi.Context, pushCheck func(context.Context, config.Config) error,
	enginePlatform func(context.Context, config.Config) (engineplatform.Platforms, error)) (config.Config, *site.Site, error) {
	cfg, err := config.FromContext(ctx)
	if err != nil {
		return cfg, nil, err // before any resource is registered: nothing is created
	}
	s, err := site.New(ctx, "site", site.Args{Config: cfg, AppDir: "app", RunningName: ctx.Project() + "-" + ctx.Stack(),
		PushCheck: pushCheck, EnginePlatform: enginePlatform})
	return cfg, s, err
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
	if s.Index != nil { // imageRef is the index; each platform's image beside it
		export("platformImages", s.PlatformRefs)
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
