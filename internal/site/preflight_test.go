package site_test

import (
	"slices"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/subcommand"
)

// TestPreflight: each new build proves itself in the program's preflight subcommand, on the
// engine the provider deploys to, before it is pushed and before the container or the
// service is touched.
func TestPreflight(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     config.Config
		running string // the resource that runs the build
		check   subcommand.Preflight
	}{
		{"container, pushed", pushConfig(t, nil), "site-nginx",
			subcommand.Preflight{SHA256: pageSHA256(t), HostIP: "0.0.0.0", SiteHost: "localhost", Owner: namePrefix}},
		{"container, local only, this host", pulumimock.NewStackConfig(t, projectRoot, map[string]string{config.KeyPush: "false", config.KeyHostIP: "127.0.0.1"}).Load(t, ""), "site-nginx",
			subcommand.Preflight{SHA256: pageSHA256(t), HostIP: "127.0.0.1", SiteHost: "127.0.0.1", Owner: namePrefix}},
		{"swarm, on the manager", pulumimock.NewStackConfig(t, projectRoot, pulumimock.With(pushValues, swarmValues), config.KeyRegistryPassword).Load(t, "ssh://deploy@manager.example.com"), "site-service",
			subcommand.Preflight{DockerHost: "ssh://deploy@manager.example.com", SHA256: pageSHA256(t), HostIP: "0.0.0.0", SiteHost: "manager.example.com", Owner: namePrefix}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := deploy(t, tt.cfg)
			check := d.rec.Named(t, "site-preflight")
			program, err := site.ProgramPath()
			if err != nil {
				t.Fatal(err)
			}
			tt.check.Image, tt.check.Timeout = pulumimock.MockImageID, subcommand.PreflightTimeout
			argv := append(pulumimock.StringList(check.Inputs, "interpreter"), pulumimock.Plain(t, check.Inputs, "create"))
			if want := append([]string{program, subcommand.PreflightName}, tt.check.Args()...); !slices.Equal(argv, want) {
				t.Errorf("the preflight runs %q, want %q", argv, want)
			}
			if got := pulumimock.Plain(t, check.Inputs, "triggers"); got != "["+pulumimock.MockImageID+"]" {
				t.Errorf("the preflight's triggers %s: it must run again for every new build", got)
			}
			if !pulumimock.DependsOn(d.rec.Named(t, tt.running).Deps, "site-preflight") {
				t.Errorf("%s must wait for the preflight", tt.running)
			}
			if tt.cfg.Push && !pulumimock.DependsOn(d.rec.Named(t, "site-push").Deps, "site-preflight") {
				t.Error("the push must wait for the preflight: a broken build never reaches the registry")
			}
		})
	}
}
