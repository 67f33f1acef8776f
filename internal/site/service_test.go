package site_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/subcommand"
)

var swarmValues = map[string]string{config.KeyMode: config.ModeSwarm, config.KeySiteHost: "manager.example.com"}

// expectAt fails unless the value at path of in prints as want does.
func expectAt(t *testing.T, in resource.PropertyMap, path string, want any) {
	t.Helper()
	if got := pulumimock.At(t, in, path).Mappable(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Service %s = %v, want %v", path, got, want)
	}
}

func TestSwarmService(t *testing.T) {
	tests := []struct {
		name         string
		values       map[string]string
		wantOrder    string
		wantReplicas any // nil: global
		maxPerNode   any // nil: no limit
	}{
		{"replicated behind the routing mesh", swarmValues, "start-first", 2.0, nil},
		{"host publishing, one task per node", pulumimock.With(swarmValues, map[string]string{config.KeyPublishMode: config.PublishHost, config.KeyReplicas: "3"}), "stop-first", 3.0, 1.0},
		{"global", pulumimock.With(swarmValues, map[string]string{config.KeyServiceMode: config.ServiceGlobal, config.KeyPublishMode: config.PublishHost}), "stop-first", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deploy(t, pushConfig(t, tt.values))
			if found := d.rec.ByType(pulumimock.TypeContainer); len(found) != 0 {
				t.Fatalf("swarm mode registered %d Containers", len(found))
			}
			service := d.rec.One(t, pulumimock.TypeService)
			expectPulledByDigest(t, service)
			expectHardenedTask(t, service.Inputs)
			expectRollingUpdates(t, service.Inputs, tt.wantOrder)
			if tt.wantReplicas == nil {
				expectAt(t, service.Inputs, "mode.global", true)
			} else {
				expectAt(t, service.Inputs, "mode.replicated.replicas", tt.wantReplicas)
			}
			if tt.maxPerNode != nil {
				expectAt(t, service.Inputs, "taskSpec.placement.maxReplicas", tt.maxPerNode)
			}
			if got := d.outputs["url"]; got != "http://manager.example.com:8080/" {
				t.Errorf("url %v", got)
			}
		})
	}
}

// expectPulledByDigest: every node runs exactly the pushed build, pulled with the
// credentials, the password only as a secret.
func expectPulledByDigest(t *testing.T, service pulumimock.Registered) {
	t.Helper()
	in := service.Inputs
	expectAt(t, in, "name", namePrefix)
	// The familiar name, as the engine reads a docker.io image back: no diff on a no-op up.
	expectAt(t, in, "taskSpec.containerSpec.image", "alice/custom-nginx@"+pulumimock.MockDigest)
	if !pulumimock.DependsOn(service.Deps, "RegistryImage") {
		t.Errorf("the Service must depend on the push, deps %v", service.Deps)
	}
	expectAt(t, in, "auth.serverAddress", "docker.io")
	expectAt(t, in, "auth.username", "alice")
	if password := pulumimock.At(t, in, "auth.password"); !password.IsSecret() || password.SecretValue().Element.StringValue() != testPassword {
		t.Errorf("Service auth.password must be the password, as a secret; got %v", password)
	}
}

// expectHardenedTask: a task runs with the container's hardened runtime.
func expectHardenedTask(t *testing.T, in resource.PropertyMap) {
	t.Helper()
	rt := engine.Hardened
	expectAt(t, in, "taskSpec.containerSpec.user", rt.User)
	expectAt(t, in, "taskSpec.containerSpec.readOnly", rt.ReadOnlyRoot)
	expectAt(t, in, "taskSpec.containerSpec.mounts[0].type", "tmpfs")
	expectAt(t, in, "taskSpec.containerSpec.mounts[0].target", rt.Tmpfs.Path)
	expectAt(t, in, "taskSpec.containerSpec.capDrops", rt.CapDrop)
	expectAt(t, in, "taskSpec.containerSpec.stopSignal", rt.StopSignal)
	expectAt(t, in, "taskSpec.containerSpec.stopGracePeriod", rt.StopTimeout.String())
	expectAt(t, in, "taskSpec.containerSpec.healthcheck.tests", rt.Health.Test)
	// Swarm acts on it (rolling updates, rollbacks): far more often than the image's.
	expectAt(t, in, "taskSpec.containerSpec.healthcheck.interval", "2s")
	expectAt(t, in, "taskSpec.resources.limits.memoryBytes", float64(rt.MemoryMB<<20))
	expectAt(t, in, "taskSpec.restartPolicy.condition", "any")
	expectAt(t, in, "endpointSpec.ports[0].targetPort", float64(rt.ContainerPort))
	expectAt(t, in, "endpointSpec.ports[0].publishedPort", 8080.0)
}

// expectRollingUpdates: one task at a time, rolled back when it does not come up healthy.
func expectRollingUpdates(t *testing.T, in resource.PropertyMap, order string) {
	t.Helper()
	rt := engine.Hardened
	for _, cfg := range []string{"updateConfig", "rollbackConfig"} {
		expectAt(t, in, cfg+".parallelism", 1.0)
		if delay, err := time.ParseDuration(pulumimock.At(t, in, cfg+".delay").StringValue()); err != nil || delay <= 0 {
			t.Errorf("%s.delay %v (%v): with none Swarm can stop the next task before it sees the last one fail", cfg, delay, err)
		}
		expectAt(t, in, cfg+".order", order)
		monitor, err := time.ParseDuration(pulumimock.At(t, in, cfg+".monitor").StringValue())
		if healthy := 2*time.Second*time.Duration(rt.Health.Retries) + rt.Health.Timeout; err != nil || monitor <= healthy {
			t.Errorf("%s.monitor %v (%v) must outlast a healthcheck's verdict (%s)", cfg, monitor, err, healthy)
		}
	}
	expectAt(t, in, "updateConfig.failureAction", "rollback")
	if !pulumimock.At(t, in, "convergeConfig.timeout").IsString() {
		t.Error("no convergeConfig: pulumi up would return before the tasks run")
	}
}

// TestRolloutWait: this program in its rollout subcommand, on the manager the provider
// deploys to, after the service; the smoke check after the wait; both again for a new image.
func TestRolloutWait(t *testing.T) {
	for _, dockerHost := range []string{"", "ssh://deploy@manager.example.com"} {
		t.Run("engine "+dockerHost, func(t *testing.T) {
			cfg := pulumimock.NewStackConfig(t, projectRoot, pulumimock.With(pushValues, swarmValues), config.KeyRegistryPassword).Load(t, dockerHost)
			d := deploy(t, cfg)
			wait := d.rec.Named(t, "site-rollout")
			argv := append(pulumimock.StringList(wait.Inputs, "interpreter"), pulumimock.Plain(t, wait.Inputs, "create"))
			program, err := site.ProgramPath()
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{program, subcommand.RolloutWaitName}, subcommand.RolloutWait{DockerHost: dockerHost, Service: namePrefix, Timeout: subcommand.RolloutTimeout}.Args()...)
			if !slices.Equal(argv, want) {
				t.Errorf("the rollout wait runs %q, want %q", argv, want)
			}
			if !pulumimock.DependsOn(wait.Deps, "Service") {
				t.Errorf("the rollout wait must run after the service, deps %v", wait.Deps)
			}
			smokeCheck := d.rec.Named(t, "site-smoke-check")
			if !pulumimock.DependsOn(smokeCheck.Deps, "site-rollout") {
				t.Errorf("the smoke check must run after the rollout wait, deps %v", smokeCheck.Deps)
			}
			for _, cmd := range []pulumimock.Registered{wait, smokeCheck} {
				if triggers := fmt.Sprint(pulumimock.At(t, cmd.Inputs, "triggers").Mappable()); !strings.Contains(triggers, pulumimock.MockDigest) {
					t.Errorf("%s must re-run for a rolled-out image: triggers %v", cmd.Name, triggers)
				}
			}
		})
	}
}
