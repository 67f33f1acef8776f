package site_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/subcommand"
)

// TestPlatformsPublishAnIndex: with platforms, the engine's platform is built as site-image
// and every other one beside it, each pushed under imageTag-os-arch; the index command
// names every pushed digest with its platform, gets the password only as a secret in its
// environment, and imageRef is the index's digest.
func TestPlatformsPublishAnIndex(t *testing.T) {
	cfg := pushConfig(t, map[string]string{config.KeyPlatforms: "linux/arm64,linux/amd64"})
	d, err := deployWith(t, onEngine(t, cfg, "linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]string{
		"site-image":             {"linux/amd64", "docker.io/alice/custom-nginx:v1-linux-amd64"},
		"site-image-linux-arm64": {"linux/arm64", "docker.io/alice/custom-nginx:v1-linux-arm64"},
	} {
		in := d.rec.Named(t, name).Inputs
		if got := [2]string{pulumimock.Plain(t, in, "build.platform"), pulumimock.Plain(t, in, "imageName")}; got != want {
			t.Errorf("%s builds %v, want %v", name, got, want)
		}
	}
	if got := pulumimock.Plain(t, d.rec.Named(t, "site-push-linux-arm64").Inputs, "name"); got != "docker.io/alice/custom-nginx:v1-linux-arm64" {
		t.Errorf("the arm64 push sends %s", got)
	}
	index := d.rec.Named(t, "site-index")
	argv := append(pulumimock.StringList(index.Inputs, "interpreter"), pulumimock.Plain(t, index.Inputs, "create"))
	x, err := subcommand.ParsePublishIndex(argv[2:])
	if err != nil {
		t.Fatalf("the index command %q: %v", argv, err)
	}
	want := []string{"linux/amd64=" + pulumimock.MockDigest, "linux/arm64=" + pulumimock.MockDigest}
	if x.Tag != "docker.io/alice/custom-nginx:v1" || x.Username != "alice" || !slices.Equal(x.Manifests, want) {
		t.Errorf("the index command writes %+v, want docker.io/alice/custom-nginx:v1 of %v", x, want)
	}
	if password := pulumimock.At(t, index.Inputs, "environment."+subcommand.PasswordEnv); !password.IsSecret() || slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, testPassword) }) {
		t.Errorf("the password reaches the index command as %v (argv %q): want a secret in its environment only", password, argv)
	}
	if !pulumimock.DependsOn(index.Deps, "site-push-linux-arm64") || !pulumimock.DependsOn(d.rec.Named(t, "site-smoke-check").Deps, "site-index") {
		t.Errorf("the index must follow every push, and the smoke check the index: deps %v, %v", index.Deps, d.rec.Named(t, "site-smoke-check").Deps)
	}
	if got := d.outputs["imageRef"]; got != "docker.io/alice/custom-nginx@"+pulumimock.MockIndexDigest {
		t.Errorf("imageRef %s, want the index's digest (the command's stdout)", got)
	}

}
