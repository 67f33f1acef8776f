//go:build linux

package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/example/custom-nginx/internal/testsupport"
)

// TestAcceptanceArm64 runs the stack with platform linux/arm64 on the tests' Docker Hub,
// whose docker.io/library/nginx:<pinned> serves amd64 and arm64 under one tag (an OCI
// index), as the official image does, while this machine runs arm64 binaries only through
// qemu-user-static. The arm64 build is proven by running it: the preflight, the container
// and the smoke check all run it under emulation.
func TestAcceptanceArm64(t *testing.T) {
	requireToolchain(t)
	testsupport.EmulateArm64(t) // before the Hub: unregistered after its teardown
	l := &hubLife{ctx: t.Context(), accounts: hubAccounts(t)}
	l.hub = testsupport.StartDockerHub(t, testsupport.HubOptions{Accounts: l.accounts, AppDir: appDir, Arm64: true})
	cli, err := l.hub.PulumiCommand()
	if err != nil {
		t.Fatal(err)
	}
	l.ws = newWorkspace(t, l.hub.Socket)
	l.appFolder = filepath.Join(l.ws.Dir, "app")
	l.stack = newStack(t, l.ws, "arm"+randomHex(t, 4), auto.ConfigMap{
		"registryUsername": {Value: hubUser},
		"registryPassword": {Value: l.password(), Secret: true},
		"platform":         {Value: "linux/arm64"},
	}, l.hub.Engine, auto.Pulumi(cli))
	site, err := l.hub.Forward("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	l.url = "http://" + site.Addr + "/"
	runLife(t, "the arm64 stack's life", func(t *testing.T) { expectNoThrowaway(t, l.hub.Engine) }, []lifeStep{
		{"the base is one tag for amd64 and arm64", l.baseIsAnIndex},
		{"first up builds for arm64 and runs it under emulation", l.arm64FirstUp},
		{"destroy", l.destroy},
	})
}

// remote is go-containerregistry's way to the Hub as the user, through its namespace and trust.
func (l *hubLife) remote() []remote.Option {
	return []remote.Option{remote.WithContext(l.ctx), remote.WithTransport(l.hub.HTTPClient().Transport),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: hubUser, Password: l.password()}))}
}

// baseIsAnIndex: the Hub's base lists exactly linux/amd64 and linux/arm64, read back from
// the registry.
func (l *hubLife) baseIsAnIndex(t *testing.T) {
	ref, err := name.ParseReference(l.hub.BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	index, err := remote.Index(ref, l.remote()...)
	if err != nil {
		t.Fatalf("%s is not an index: %v", l.hub.BaseImage, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range manifest.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	slices.Sort(platforms)
	if fmt.Sprint(platforms) != "[linux/amd64 linux/arm64]" {
		t.Errorf("%s lists %v, want linux/amd64 and linux/arm64", l.hub.BaseImage, platforms)
	}
}

// arm64FirstUp: the pushed image is arm64, and its container, on this amd64 engine, serves
// the page byte for byte and says aarch64.
func (l *hubLife) arm64FirstUp(t *testing.T) {
	r := l.mustUp(t)
	expectChanges(t, r, map[string]int{"create": 8}) // the stack, the component and its six children
	ref, err := name.ParseReference("docker.io/" + hubUser + "/custom-nginx:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, l.remote()...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.OS + "/" + cfg.Architecture; got != "linux/arm64" {
		t.Errorf("pushed %s is %s, want linux/arm64", ref, got)
	}
	expectSite(t, l.url, l.appFolder, "from the arm64 build")
	code, out, err := l.hub.Engine.Exec(l.ctx, r.out("containerName"), "uname", "-m")
	if err != nil || code != 0 || strings.TrimSpace(out) != "aarch64" {
		t.Errorf("uname -m in %s: %q (exit %d, %v), want aarch64", r.out("containerName"), out, code, err)
	}
}
