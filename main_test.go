package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/site"
)

const (
	testProject  = "custom-nginx"
	testStack    = "dev"
	testPassword = "dckr_pat_unit-test-password"
)

// engineAt is where the docker provider deploys to: DOCKER_HOST in the program's
// environment and docker:host in the stack's config, each "" when not set. The tests set
// both, so a developer's own DOCKER_HOST never reaches them.
type engineAt struct{ env, config string }

// deployment is what one run of the program produced.
type deployment struct {
	rec     *pulumimock.Recorder
	outputs map[string]awaited
	err     error
}

type awaited struct {
	value  any
	secret bool
}

// amd64Engine answers the platform query as an amd64 engine; the real answer is engine's
// and e2e's to test.
func amd64Engine(context.Context, config.Config) (config.EnginePlatforms, error) {
	return config.EnginePlatforms{Engine: "linux/amd64"}, nil
}

// deploy runs the program under mocks on the local engine with the given project config;
// secret lists the keys set with --secret.
func deploy(t *testing.T, values map[string]string, secret ...string) deployment {
	t.Helper()
	return deployOn(t, engineAt{}, values, secret...)
}

// deployOn runs the program under mocks for the engine e, an amd64 one.
func deployOn(t *testing.T, e engineAt, values map[string]string, secret ...string) deployment {
	t.Helper()
	return run(t, e, amd64Engine, values, secret)
}

// run runs the program under mocks for the engine e, which answers ask, with run's options
// (asPreview for a preview). Config reaches the program the way the CLI passes it: every key
// Pulumi.yaml declares, its default applied.
func run(t *testing.T, e engineAt, ask engine.PlatformQuery, values map[string]string, secret []string, opts ...pulumi.RunOption) deployment {
	t.Helper()
	stack := pulumimock.NewStackConfig(t, ".", values, secret...)
	cfg := map[string]string{}
	for k, v := range stack.Values {
		cfg[testProject+":"+k] = v
	}
	if e.config != "" {
		cfg["docker:host"] = e.config
	}
	secretKeys := []string{}
	for _, k := range secret {
		secretKeys = append(secretKeys, testProject+":"+k)
	}
	t.Setenv("PULUMI_CONFIG", jsonString(cfg))
	t.Setenv("PULUMI_CONFIG_SECRET_KEYS", jsonString(secretKeys))
	t.Setenv("DOCKER_HOST", e.env)

	d := deployment{rec: &pulumimock.Recorder{}, outputs: map[string]awaited{}}
	d.err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		exports := map[string]pulumi.Input{}
		if err := program(ctx, ask, func(name string, value pulumi.Input) { exports[name] = value }); err != nil {
			return err
		}
		for name, value := range exports {
			res, err := internals.UnsafeAwaitOutput(context.Background(), pulumi.ToOutput(value))
			if err != nil {
				return err
			}
			d.outputs[name] = awaited{value: res.Value, secret: res.Secret}
		}
		return nil
	}, append([]pulumi.RunOption{pulumi.WithMocks(testProject, testStack, d.rec)}, opts...)...)
	return d
}

var pushConfig = map[string]string{
	config.KeyRegistryUsername: "alice",
	config.KeyRegistryPassword: testPassword,
}

// expectOutputs fails unless d exported exactly want, every value in clear.
func expectOutputs(t *testing.T, d deployment, want map[string]any) {
	t.Helper()
	if d.err != nil {
		t.Fatal(d.err)
	}
	if len(d.outputs) != len(want) {
		t.Errorf("outputs %v, want keys of %v", d.outputs, want)
	}
	for name, want := range want {
		if got := d.outputs[name]; fmt.Sprint(got.value) != fmt.Sprint(want) || got.secret {
			t.Errorf("output %s = %v (secret %v), want %v in clear", name, got.value, got.secret, want)
		}
	}
}

// TestExports: with Pulumi.yaml's defaults and Docker Hub credentials, the stack runs one
// container on this machine's port 8080 and says where the pushed image is.
func TestExports(t *testing.T) {
	expectOutputs(t, deploy(t, pushConfig, config.KeyRegistryPassword), map[string]any{
		"repoUrl":       "https://hub.docker.com/r/alice/custom-nginx",
		"imageRef":      "docker.io/alice/custom-nginx@" + pulumimock.MockDigest,
		"imageId":       pulumimock.MockImageID,
		"url":           "http://localhost:8080/",
		"containerName": nginxName,
		"smokeCheck":    pulumimock.MockStdout,
	})
}

// nginxName is the name of the nginx container the mocks run, in the port holder's network.
var nginxName = site.NginxName("custom-nginx-dev", pulumimock.MockImageID, pulumimock.MockID(pulumimock.TypeContainer, "site-port-holder"), nil)

func TestExportsWithoutPush(t *testing.T) {
	expectOutputs(t, deploy(t, map[string]string{config.KeyPush: "false", config.KeyHostPort: "9090"}), map[string]any{
		"imageRef":      pulumimock.MockImageID, // no repoUrl: nothing was pushed
		"imageId":       pulumimock.MockImageID,
		"url":           "http://localhost:9090/",
		"containerName": nginxName,
		"smokeCheck":    pulumimock.MockStdout,
	})
}

func TestExportsInSwarmMode(t *testing.T) {
	swarm := pulumimock.With(pushConfig, map[string]string{config.KeyMode: config.ModeSwarm, config.KeySiteHost: "manager.example.com"})
	for name, tt := range map[string]struct {
		values   map[string]string
		replicas any // nil: a global service, which exports none
	}{
		"replicated":                   {swarm, 2},
		"host publishing, three tasks": {pulumimock.With(swarm, map[string]string{config.KeyPublishMode: config.PublishHost, config.KeyReplicas: "3"}), 3},
		"global":                       {pulumimock.With(swarm, map[string]string{config.KeyServiceMode: config.ServiceGlobal}), nil},
	} {
		t.Run(name, func(t *testing.T) {
			want := map[string]any{
				"repoUrl":     "https://hub.docker.com/r/alice/custom-nginx",
				"imageRef":    "docker.io/alice/custom-nginx@" + pulumimock.MockDigest,
				"imageId":     pulumimock.MockImageID,
				"url":         "http://manager.example.com:8080/",
				"serviceName": "custom-nginx-dev", // and no containerName
				"smokeCheck":  pulumimock.MockStdout,
			}
			if tt.replicas != nil {
				want["replicas"] = tt.replicas
			}
			expectOutputs(t, deploy(t, tt.values, config.KeyRegistryPassword), want)
		})
	}
}

// TestEngineAddress: the program deploys where the docker provider does, docker:host over
// DOCKER_HOST, and says the site is on that engine's host.
func TestEngineAddress(t *testing.T) {
	for _, tt := range []struct {
		name    string
		engine  engineAt
		wantURL string
	}{
		{"DOCKER_HOST, a remote engine", engineAt{env: "tcp://10.1.2.3:2375"}, "http://10.1.2.3:8080/"},
		{"DOCKER_HOST, a local socket", engineAt{env: "unix:///var/run/docker.sock"}, "http://localhost:8080/"},
		{"docker:host over DOCKER_HOST", engineAt{env: "tcp://10.1.2.3:2375", config: "ssh://deploy@[2001:db8::7]"}, "http://[2001:db8::7]:8080/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := deployOn(t, tt.engine, map[string]string{config.KeyPush: "false"})
			if d.err != nil {
				t.Fatal(d.err)
			}
			if got := d.outputs["url"].value; got != tt.wantURL {
				t.Errorf("url %v, want %s", got, tt.wantURL)
			}
		})
	}
}

func TestPasswordAppearsInNoOutput(t *testing.T) {
	for _, mode := range []string{config.ModeContainer, config.ModeSwarm} {
		d := deploy(t, pulumimock.With(pushConfig, map[string]string{config.KeyMode: mode}), config.KeyRegistryPassword)
		if d.err != nil {
			t.Fatal(d.err)
		}
		for name, out := range d.outputs {
			if strings.Contains(jsonString(out.value), testPassword) {
				t.Errorf("%s mode: output %s contains the password", mode, name)
			}
		}
	}
}

// TestBadConfigRegistersNothing: the config rules are config.Load's (its table tests them);
// here the program must stop on them before any resource, and hand the SDK each problem
// as an error of its own, so the CLI counts and bullets them all.
func TestBadConfigRegistersNothing(t *testing.T) {
	d := deploy(t, map[string]string{config.KeyHostPort: "70000", config.KeyImageTag: "-v1"})
	var errs *multierror.Error
	if !errors.As(d.err, &errs) {
		t.Fatalf("error %v: want the problems as a multierror, one error each", d.err)
	}
	want := []string{"config registryUsername:", "config registryPassword:", "config imageTag:", "config hostPort:"}
	if len(errs.Errors) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(errs.Errors), len(want), errs.Errors)
	}
	for i, prefix := range want {
		if i < len(errs.Errors) && !strings.HasPrefix(errs.Errors[i].Error(), prefix) {
			t.Errorf("error %d %q, want it to start with %q", i, errs.Errors[i], prefix)
		}
	}
	if n := len(d.rec.All()); n != 0 {
		t.Fatalf("bad config registered %d resources, want none", n)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
