package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/example/custom-nginx/internal/subcommand"
	"github.com/example/custom-nginx/internal/testbed"
)

// pushFor pushes a small image whose config says platform to repo (by digest only) and
// returns "platform=digest", as the stack hands it to the publish-index subcommand.
func pushFor(t *testing.T, repo name.Repository, auth remote.Option, platform v1.Platform) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg.OS, cfg.Architecture = platform.OS, platform.Architecture
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Digest(digest.String()), img, auth); err != nil {
		t.Fatal(err)
	}
	return platform.OS + "/" + platform.Architecture + "=" + digest.String()
}

// TestIndexOnARealRegistry: the publish-index subcommand writes an OCI index of the pushed images under
// the tag, each with its platform, prints its digest, and reads the password from the
// environment only; an image the repository lacks fails naming it.
func TestIndexOnARealRegistry(t *testing.T) {
	reg := testbed.RequireRegistry(t, "ci", "index-password")
	repo, err := name.NewRepository(reg.Addr + "/ci/custom-nginx")
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: reg.User, Password: reg.Password}))
	x := subcommand.PublishIndex{Tag: repo.Tag("v1").String(), Username: reg.User, Manifests: []string{
		pushFor(t, repo, auth, v1.Platform{OS: "linux", Architecture: "amd64"}),
		pushFor(t, repo, auth, v1.Platform{OS: "linux", Architecture: "arm64"}),
	}}
	if slices.ContainsFunc(x.Args(), func(a string) bool { return strings.Contains(a, reg.Password) }) {
		t.Fatalf("the password is in the command line %q", x.Args())
	}
	t.Setenv(subcommand.PasswordEnv, reg.Password)
	var stdout, stderr strings.Builder
	if code := runSubcommand(subcommand.PublishIndexName, x.Args(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	index, err := remote.Index(repo.Tag("v1"), auth)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := index.Digest()
	if got := strings.TrimSpace(stdout.String()); got != digest.String() {
		t.Errorf("printed %q, the registry's index is %s", got, digest)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range manifest.Manifests {
		listed = append(listed, fmt.Sprintf("%s=%s", m.Platform, m.Digest))
	}
	if !slices.Equal(listed, x.Manifests) || manifest.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("the index (%s) lists %v, want %v", manifest.MediaType, listed, x.Manifests)
	}

	missing := x
	missing.Manifests = []string{"linux/riscv64=sha256:" + strings.Repeat("0", 64)}
	if _, err := missing.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "linux/riscv64 image sha256:000") {
		t.Errorf("an image the repository lacks: error %v, want it named", err)
	}
}
