package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/pulumimock"
)

// s390xPlatform is the platform the engine of these tests runs: not this machine's, so a
// build for it shows it was asked.
const s390xPlatform = "linux/s390x"

// asPreview runs the program as `pulumi preview` does.
func asPreview(info *pulumi.RunInfo) { info.DryRun = true }

// answering is a platform query that records what it was asked and answers found, err.
func answering(asked *[]config.Config, found config.EnginePlatforms, err error) engine.PlatformQuery {
	return func(_ context.Context, cfg config.Config) (config.EnginePlatforms, error) {
		*asked = append(*asked, cfg)
		return found, err
	}
}

// TestEnginePlatform: an empty platform is the engine's, asked with the stack's engine; a
// configured one is built as it is, without asking. An engine out of reach leaves a
// preview with the provider's default and fails `up` before anything is registered; any
// other error (a swarm manager that cannot list its nodes) fails both.
func TestEnginePlatform(t *testing.T) {
	secret := []string{config.KeyRegistryPassword}
	arm64 := pulumimock.With(pushConfig, map[string]string{config.KeyPlatform: "linux/arm64"})
	var asked []config.Config
	s390x := answering(&asked, config.EnginePlatforms{Engine: s390xPlatform}, nil)
	d := run(t, engineAt{env: "tcp://10.1.2.3:2375"}, s390x, pushConfig, secret)
	if d.err != nil || len(asked) != 1 || asked[0].DockerHost != "tcp://10.1.2.3:2375" {
		t.Fatalf("error %v; the engine was asked %d times (%v), want once, at the stack's engine", d.err, len(asked), asked)
	}
	if got := pulumimock.Plain(t, d.rec.One(t, pulumimock.TypeImage).Inputs, "build.platform"); got != s390xPlatform {
		t.Errorf("build.platform %q, want the engine's %s", got, s390xPlatform)
	}
	asked = nil
	if d := run(t, engineAt{}, s390x, arm64, secret); d.err != nil || len(asked) != 0 {
		t.Errorf("platform set: error %v, the engine asked %d times; want neither", d.err, len(asked))
	}

	unreachable := answering(&asked, config.EnginePlatforms{}, &engine.UnreachableError{Engine: "tcp://192.0.2.7:2376", Err: errors.New("connection refused")})
	preview := run(t, engineAt{}, unreachable, pushConfig, secret, asPreview)
	if preview.err != nil {
		t.Fatalf("a preview failed for an engine out of reach: %v", preview.err)
	}
	if platform := preview.rec.One(t, pulumimock.TypeImage).Inputs["build"].ObjectValue()["platform"]; !platform.IsNull() {
		t.Errorf("a preview without the engine sent build.platform %v, want the provider's default", platform)
	}
	up := run(t, engineAt{}, unreachable, pushConfig, secret)
	if up.err == nil || !strings.Contains(up.err.Error(), "tcp://192.0.2.7:2376") || len(up.rec.All()) != 0 {
		t.Errorf("up with the engine out of reach: error %v, %d resources; want the engine named and none", up.err, len(up.rec.All()))
	}

	refusal := errors.New("asking the swarm manager tcp://192.0.2.7:2376 for its nodes' platforms: this node is not a swarm manager")
	if d := run(t, engineAt{}, answering(&asked, config.EnginePlatforms{}, refusal), pushConfig, secret, asPreview); !errors.Is(d.err, refusal) {
		t.Errorf("a preview on a manager that cannot list its nodes: error %v, want %v", d.err, refusal)
	}
}

// TestMixedSwarmPublishesEveryNodesPlatform: with platform and platforms empty, a swarm of
// amd64 and arm64 nodes gets an image for each and an index, which the service names; with
// platforms set, a node whose platform it lacks is refused before anything is registered.
func TestMixedSwarmPublishesEveryNodesPlatform(t *testing.T) {
	secret := []string{config.KeyRegistryPassword}
	swarm := pulumimock.With(pushConfig, map[string]string{config.KeyMode: config.ModeSwarm})
	amd64Only := pulumimock.With(swarm, map[string]string{config.KeyPlatforms: "linux/amd64"})
	var asked []config.Config
	mixed := answering(&asked, config.EnginePlatforms{Engine: "linux/amd64", Nodes: []string{"linux/amd64", "linux/arm64"}}, nil)
	d := run(t, engineAt{}, mixed, swarm, secret)
	if d.err != nil {
		t.Fatal(d.err)
	}
	if got := pulumimock.Plain(t, d.rec.Named(t, "site-image-linux-arm64").Inputs, "build.platform"); got != "linux/arm64" {
		t.Errorf("the arm64 nodes' image is built for %q", got)
	}
	if got, want := pulumimock.Plain(t, d.rec.Named(t, "site-service").Inputs, "taskSpec.containerSpec.image"), "alice/custom-nginx@"+pulumimock.MockIndexDigest; got != want {
		t.Errorf("the service runs %s, want the index %s", got, want)
	}
	refused := run(t, engineAt{}, mixed, amd64Only, secret)
	if refused.err == nil || !strings.Contains(refused.err.Error(), "config platforms: the engine or a swarm node runs linux/arm64, which platforms does not list") || len(refused.rec.All()) != 0 {
		t.Errorf("platforms without a node's platform: error %v, %d resources; want it refused, nothing registered", refused.err, len(refused.rec.All()))
	}
}
