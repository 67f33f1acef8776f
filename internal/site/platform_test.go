package site_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineplatform"
	"github.com/example/custom-nginx/internal/imageindex"
	"github.com/example/custom-nginx/internal/testsupport"
)

// TestEnginePlatform: an empty platform is the engine's, asked with the stack's config; a
// configured one is built as it is, without asking. An engine out of reach leaves a
// preview with the provider's default and fails `up` before anything is registered; any
// other error (a swarm manager that cannot list its nodes) fails both.
func TestEnginePlatform(t *testing.T) {
	cfg, arm64 := pushConfig(t, nil), pushConfig(t, map[string]string{config.KeyPlatform: "linux/arm64"})
	var asked []config.Config
	answers := outside()
	answers.EnginePlatform = func(_ context.Context, got config.Config) (engineplatform.Platforms, error) {
		asked = append(asked, got)
		return engineplatform.Platforms{Engine: enginePlatform}, nil
	}
	d, err := deployWith(t, cfg, answers)
	if err != nil || len(asked) != 1 || !reflect.DeepEqual(asked[0], cfg) {
		t.Fatalf("error %v; the engine was asked %d times (%v), want once with the stack's config", err, len(asked), asked)
	}
	if got := testsupport.Plain(t, d.rec.One(t, testsupport.TypeImage).Inputs, "build.platform"); got != enginePlatform {
		t.Errorf("build.platform %q, want the engine's %s", got, enginePlatform)
	}
	asked = nil
	if _, err := deployWith(t, arm64, answers); err != nil || len(asked) != 0 {
		t.Errorf("platform set: error %v, the engine asked %d times; want neither", err, len(asked))
	}

	unreachable := outside()
	unreachable.EnginePlatform = func(context.Context, config.Config) (engineplatform.Platforms, error) {
		return engineplatform.Platforms{}, &engineplatform.UnreachableError{Engine: "tcp://192.0.2.7:2376", Err: errors.New("connection refused")}
	}
	preview, err := deployWith(t, cfg, unreachable, asPreview)
	if err != nil {
		t.Fatalf("a preview failed for an engine out of reach: %v", err)
	}
	if platform := preview.rec.One(t, testsupport.TypeImage).Inputs["build"].ObjectValue()["platform"]; !platform.IsNull() {
		t.Errorf("a preview without the engine sent build.platform %v, want the provider's default", platform)
	}
	up, err := deployWith(t, cfg, unreachable)
	if err == nil || !strings.Contains(err.Error(), "tcp://192.0.2.7:2376") || len(up.rec.All()) != 0 {
		t.Errorf("up with the engine out of reach: error %v, %d resources; want the engine named and none", err, len(up.rec.All()))
	}

	notManager := outside()
	refusal := errors.New("asking the swarm manager tcp://192.0.2.7:2376 for its nodes' platforms: this node is not a swarm manager")
	notManager.EnginePlatform = func(context.Context, config.Config) (engineplatform.Platforms, error) {
		return engineplatform.Platforms{}, refusal
	}
	if _, err := deployWith(t, cfg, notManager, asPreview); !errors.Is(err, refusal) {
		t.Errorf("a preview on a manager that cannot list its nodes: error %v, want %v", err, refusal)
	}
}

// TestMixedSwarmPublishesEveryNodesPlatform: with platform and platforms empty, a swarm of
// amd64 and arm64 nodes gets an image for each and an index, which the service names; with
// platforms set, a node whose platform it lacks is refused before anything is registered.
func TestMixedSwarmPublishesEveryNodesPlatform(t *testing.T) {
	cfg := testsupport.NewStackConfig(t, projectRoot, testsupport.With(pushValues, swarmValues), config.KeyRegistryPassword).Load(t, "")
	amd64Only := testsupport.NewStackConfig(t, projectRoot, testsupport.With(testsupport.With(pushValues, swarmValues), map[string]string{config.KeyPlatforms: "linux/amd64"}), config.KeyRegistryPassword).Load(t, "")
	mixed := outside()
	mixed.EnginePlatform = func(context.Context, config.Config) (engineplatform.Platforms, error) {
		return engineplatform.Platforms{Engine: "linux/amd64", Nodes: []string{"linux/amd64", "linux/arm64"}}, nil
	}
	d, err := deployWith(t, cfg, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if got := testsupport.Plain(t, d.rec.Named(t, "site-image-linux-arm64").Inputs, "build.platform"); got != "linux/arm64" {
		t.Errorf("the arm64 nodes' image is built for %q", got)
	}
	if got, want := testsupport.Plain(t, d.rec.Named(t, "site-service").Inputs, "taskSpec.containerSpec.image"), "alice/custom-nginx@"+testsupport.MockIndexDigest; got != want {
		t.Errorf("the service runs %s, want the index %s", got, want)
	}
	refused, err := deployWith(t, amd64Only, mixed)
	if err == nil || !strings.Contains(err.Error(), "config platforms: the engine or a swarm node runs linux/arm64, which platforms does not list") || len(refused.rec.All()) != 0 {
		t.Errorf("platforms without a node's platform: error %v, %d resources; want it refused, nothing registered", err, len(refused.rec.All()))
	}
}

// asPreview runs the program as `pulumi preview` does.
func asPreview(info *pulumi.RunInfo) { info.DryRun = true }

// TestPlatformsPublishAnIndex: with platforms, the engine's platform is built as site-image
// and every other one beside it, each pushed under imageTag-os-arch; the index command
// names every pushed digest with its platform, gets the password only as a secret in its
// environment, and imageRef is the index's digest. An engine whose platform the list lacks
// is refused before anything is registered.
func TestPlatformsPublishAnIndex(t *testing.T) {
	cfg := pushConfig(t, map[string]string{config.KeyPlatforms: "linux/arm64,linux/amd64"})
	amd64 := outside()
	amd64.EnginePlatform = func(context.Context, config.Config) (engineplatform.Platforms, error) {
		return engineplatform.Platforms{Engine: "linux/amd64"}, nil
	}
	d, err := deployWith(t, cfg, amd64)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]string{
		"site-image":             {"linux/amd64", "docker.io/alice/custom-nginx:v1-linux-amd64"},
		"site-image-linux-arm64": {"linux/arm64", "docker.io/alice/custom-nginx:v1-linux-arm64"},
	} {
		in := d.rec.Named(t, name).Inputs
		if got := [2]string{testsupport.Plain(t, in, "build.platform"), testsupport.Plain(t, in, "imageName")}; got != want {
			t.Errorf("%s builds %v, want %v", name, got, want)
		}
	}
	if got := testsupport.Plain(t, d.rec.Named(t, "site-push-linux-arm64").Inputs, "name"); got != "docker.io/alice/custom-nginx:v1-linux-arm64" {
		t.Errorf("the arm64 push sends %s", got)
	}
	index := d.rec.Named(t, "site-index")
	argv := append(testsupport.StringList(index.Inputs, "interpreter"), testsupport.Plain(t, index.Inputs, "create"))
	x, err := imageindex.Parse(argv[2:])
	if err != nil {
		t.Fatalf("the index command %q: %v", argv, err)
	}
	want := []string{"linux/amd64=" + testsupport.MockDigest, "linux/arm64=" + testsupport.MockDigest}
	if x.Tag != "docker.io/alice/custom-nginx:v1" || x.Username != "alice" || !slices.Equal(x.Manifests, want) {
		t.Errorf("the index command writes %+v, want docker.io/alice/custom-nginx:v1 of %v", x, want)
	}
	if password := testsupport.At(t, index.Inputs, "environment."+imageindex.PasswordEnv); !password.IsSecret() || slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, testPassword) }) {
		t.Errorf("the password reaches the index command as %v (argv %q): want a secret in its environment only", password, argv)
	}
	if !testsupport.DependsOn(index.Deps, "site-push-linux-arm64") || !testsupport.DependsOn(d.rec.Named(t, "site-nginx").Deps, "site-index") {
		t.Errorf("the index must follow every push, and nginx the index: deps %v, %v", index.Deps, d.rec.Named(t, "site-nginx").Deps)
	}
	if got := d.outputs["imageRef"]; got != "docker.io/alice/custom-nginx@"+testsupport.MockIndexDigest {
		t.Errorf("imageRef %s, want the index's digest (the command's stdout)", got)
	}

	s390x, err := deployWith(t, cfg, outside()) // an engine on enginePlatform, not listed
	if err == nil || !strings.Contains(err.Error(), "config platforms: the engine or a swarm node runs linux/s390x, which platforms does not list") || len(s390x.rec.All()) != 0 {
		t.Errorf("an engine platforms lacks: error %v, %d resources; want it refused, nothing registered", err, len(s390x.rec.All()))
	}
}
