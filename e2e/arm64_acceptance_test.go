//go:build linux

package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/example/custom-nginx/internal/testbed"
)

// TestAcceptanceArm64 runs the stack with platform linux/arm64 on the tests' Docker Hub,
// whose docker.io/library/nginx:<pinned> serves amd64 and arm64 under one tag (an OCI
// index), as the official image does, while this machine runs arm64 binaries only through
// qemu-user-static. The arm64 build is proven by running it: the preflight, the container
// and the smoke check all run it under emulation.
func TestAcceptanceArm64(t *testing.T) {
	offMachineEngine.join(t)
	l := newEmulatedHubLife(t, "platform", "linux/arm64")
	runLife(t, "the arm64 stack's life", func(t *testing.T) { expectNoThrowaway(t, l.hub.Engine, "") }, []lifeStep{
		{"the base is one tag for amd64 and arm64", l.baseIsAnIndex},
		{"first up builds for arm64 and runs it under emulation", l.arm64FirstUp},
		{"destroy", l.destroy},
	})
}

// newEmulatedHubLife is a Hub stack whose base serves amd64 and arm64, on a machine that
// runs arm64 binaries under emulation, with key set to value.
func newEmulatedHubLife(t *testing.T, key, value string) *hubLife {
	testbed.EmulateArm64(t) // before the Hub: unregistered after its teardown
	return newHubLife(t, true, auto.ConfigMap{key: {Value: value}})
}

// baseIsAnIndex: the Hub's base lists exactly linux/amd64 and linux/arm64, read back from
// the registry.
func (l *hubLife) baseIsAnIndex(t *testing.T) {
	if got := l.indexOf(t, l.hub.BaseImage); fmt.Sprint(slices.Sorted(maps.Keys(got))) != "[linux/amd64 linux/arm64]" {
		t.Errorf("%s lists %v, want linux/amd64 and linux/arm64", l.hub.BaseImage, got)
	}
}

// indexOf reads the index ref names back from the Hub: each platform's manifest digest.
func (l *hubLife) indexOf(t *testing.T, ref string) map[string]string {
	t.Helper()
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	index, err := remote.Index(parsed, l.remote()...)
	if err != nil {
		t.Fatalf("%s is not an index: %v", ref, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	platforms := map[string]string{}
	for _, m := range manifest.Manifests {
		platforms[m.Platform.String()] = m.Digest.String()
	}
	return platforms
}

// arm64FirstUp: the pushed image is arm64, and its container, on this amd64 engine, serves
// the page byte for byte and says aarch64.
func (l *hubLife) arm64FirstUp(t *testing.T) {
	r := l.mustUp(t)
	expectChanges(t, r, map[string]int{"create": 9}) // the stack, the component and its seven children
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

// TestAcceptanceMultiPlatform publishes one tag for linux/amd64 and linux/arm64 on the
// tests' Docker Hub: an image for each, pushed by digest, and an OCI index under imageTag.
// This amd64 engine runs its own variant; the arm64 one, pulled by the tag, runs under
// emulation.
func TestAcceptanceMultiPlatform(t *testing.T) {
	offMachineEngine.join(t)
	l := newEmulatedHubLife(t, "platforms", "linux/amd64,linux/arm64")
	var first string // imageRef of the first up
	runLife(t, "the multi-platform stack's life", func(t *testing.T) { expectNoThrowaway(t, l.hub.Engine, "") }, []lifeStep{
		{"first up publishes an index of both platforms", func(t *testing.T) { first = l.indexPublished(t, l.mustUp(t), 12) }},
		{"the arm64 variant pulled by the tag serves under emulation", l.arm64VariantServes},
		{"no-op up changes nothing", func(t *testing.T) { expectChanges(t, l.mustUp(t), map[string]int{"same": 12}) }},
		{"a page change publishes a new index, the old one untouched", func(t *testing.T) {
			old := l.indexOf(t, first)
			changePage(t, l.ws, "changed for every platform")
			if now := l.indexPublished(t, l.mustUp(t), 0); now == first {
				t.Errorf("imageRef still %s after a page change", first)
			}
			if got := l.indexOf(t, first); !maps.Equal(got, old) {
				t.Errorf("the old index %s now lists %v, was %v", first, got, old)
			}
		}},
		{"the password is in plain text nowhere", l.noPlainPassword},
		{"destroy", l.destroy},
	})
}

// indexPublished checks what an up published: imageRef is the index the Hub holds under
// v1, it lists exactly the two platforms at the digests platformImages gives, and the
// engine's variant serves the page. created, when not 0, is how many resources the up made.
func (l *hubLife) indexPublished(t *testing.T, r run, created int) string {
	t.Helper()
	if created > 0 {
		expectChanges(t, r, map[string]int{"create": created}) // the stack, the component, the push check, two images and pushes, the index, the preflight, the holder, nginx, the smoke check
	}
	tag := "docker.io/" + hubUser + "/custom-nginx:v1"
	listed := l.indexOf(t, tag)
	want := map[string]string{}
	for platform, ref := range r.up.Outputs["platformImages"].Value.(map[string]any) {
		want[platform] = strings.TrimPrefix(fmt.Sprint(ref), "docker.io/"+hubUser+"/custom-nginx@")
	}
	if !maps.Equal(listed, want) || len(listed) != 2 {
		t.Errorf("the index %s lists %v, want platformImages %v", tag, listed, want)
	}
	if got, wantRef := r.out("imageRef"), "docker.io/"+hubUser+"/custom-nginx@"+l.pushedDigest(t); got != wantRef {
		t.Errorf("imageRef %s, want the index's %s", got, wantRef)
	}
	expectSite(t, l.url, l.appFolder, "from the engine's variant")
	return r.out("imageRef")
}

// arm64VariantServes: the engine pulls the tag's arm64 variant, which runs hardened under
// emulation, serves the page byte for byte and says aarch64.
func (l *hubLife) arm64VariantServes(t *testing.T) {
	tag := "docker.io/" + hubUser + "/custom-nginx:v1"
	if err := l.hub.Engine.PullPlatform(l.ctx, tag, "linux/arm64", l.hub.Auth(hubUser)); err != nil {
		t.Fatalf("pulling the arm64 variant of %s: %v", tag, err)
	}
	id, base := l.hub.Engine.RunHardened(t, tag)
	site, err := l.hub.Forward(strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	url := "http://" + site.Addr + "/"
	if _, err := testbed.WaitServed(url, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	expectSite(t, url, l.appFolder, "from the arm64 variant")
	if code, out, err := l.hub.Engine.Exec(l.ctx, id, "uname", "-m"); err != nil || code != 0 || strings.TrimSpace(out) != "aarch64" {
		t.Errorf("uname -m in the arm64 variant: %q (exit %d, %v), want aarch64", out, code, err)
	}
}
