// The Pulumi program: read and validate config, ask the engine what it runs, create the
// site, export its outputs. Run again by the site's command resources, the binary is one of
// its subcommands instead.
package main

import (
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/subcommand"
)

func main() {
	if code, ok := subcommand.Run(os.Args[1:], os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	pulumi.Run(func(ctx *pulumi.Context) error { return program(ctx, engine.PlatformsOf, ctx.Export) })
}

// program loads and validates the config, completes it with what the engine runs (asked
// through platformsOf), creates the one component and declares the outputs through export;
// the tests pass their own platformsOf and export.
func program(ctx *pulumi.Context, platformsOf engine.PlatformQuery, export func(string, pulumi.Input)) error {
	cfg, err := config.FromContext(ctx)
	if err != nil {
		return err // before any resource is registered: nothing is created
	}
	// A preview without the engine goes on, with a warning.
	if cfg, err = engine.Complete(ctx.Context(), cfg, platformsOf, ctx.DryRun(), func(msg string) { _ = ctx.Log.Warn(msg, nil) }); err != nil {
		return err
	}
	s, err := site.New(ctx, "site", site.Args{Config: cfg, AppDir: "app", NamePrefix: ctx.Project() + "-" + ctx.Stack()})
	if err == nil {
		exportOutputs(export, cfg, s)
	}
	return err
}

// exportOutputs declares what `pulumi stack output` shows.
func exportOutputs(export func(string, pulumi.Input), cfg config.Config, s *site.Site) {
	export("url", s.URL)
	export("imageId", s.ImageID)
	export("imageRef", s.ImageRef)
	export("smokeCheck", s.SmokeCheck.Stdout)
	if cfg.Push {
		export("repoUrl", s.RepoURL)
	}
	if s.Index != nil { // imageRef is the index; each platform's image beside it
		export("platformImages", s.PlatformRefs)
	}
	if s.Nginx != nil {
		export("containerName", s.Nginx.Name)
	}
	if s.Service != nil {
		export("serviceName", s.Service.Name)
		if cfg.ServiceMode == config.ServiceReplicated { // a global service runs one task per node
			export("replicas", pulumi.Int(cfg.Replicas))
		}
	}
}
