package site_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineplatform"
	"github.com/example/custom-nginx/internal/testsupport"
)

// TestEnginePlatform: an empty platform is the engine's, asked with the stack's config; a
// configured one is built as it is, without asking. An engine out of reach leaves a
// preview with the provider's default and fails `up` before anything is registered; any
// other answer (a swarm of mixed platforms) fails both.
func TestEnginePlatform(t *testing.T) {
	cfg, arm64 := pushConfig(t, nil), pushConfig(t, map[string]string{config.KeyPlatform: "linux/arm64"})
	var asked []config.Config
	answers := outside()
	answers.EnginePlatform = func(_ context.Context, got config.Config) (string, error) {
		asked = append(asked, got)
		return enginePlatform, nil
	}
	d, err := deployWith(t, cfg, answers)
	if err != nil || len(asked) != 1 || asked[0] != cfg {
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
	unreachable.EnginePlatform = func(context.Context, config.Config) (string, error) {
		return "", &engineplatform.UnreachableError{Engine: "tcp://192.0.2.7:2376", Err: errors.New("connection refused")}
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

	mixed := outside()
	refusal := errors.New("config platform: the swarm's nodes run linux/amd64 (a) and linux/arm64 (b)")
	mixed.EnginePlatform = func(context.Context, config.Config) (string, error) { return "", refusal }
	if _, err := deployWith(t, cfg, mixed, asPreview); !errors.Is(err, refusal) {
		t.Errorf("a preview on a swarm of mixed platforms: error %v, want %v", err, refusal)
	}
}

// asPreview runs the program as `pulumi preview` does.
func asPreview(info *pulumi.RunInfo) { info.DryRun = true }
