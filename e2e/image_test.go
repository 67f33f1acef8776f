package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/registry"

	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/testbed"
)

func TestImageMetadata(t *testing.T) {
	e := testbed.RequireEngine(t)
	tag, _, base := sharedApp(t, e)
	inspect, err := e.ImageInspect(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg := inspect.Config
	if cfg.User != engine.Hardened.User {
		t.Errorf("USER %q, want %q", cfg.User, engine.Hardened.User)
	}
	if _, ok := cfg.ExposedPorts[fmt.Sprintf("%d/tcp", engine.Hardened.ContainerPort)]; !ok {
		t.Errorf("EXPOSE %v lacks %d", cfg.ExposedPorts, engine.Hardened.ContainerPort)
	}
	if cfg.StopSignal != "SIGQUIT" {
		t.Errorf("STOPSIGNAL %q", cfg.StopSignal)
	}
	if len(cfg.Entrypoint) != 0 || strings.Join(cfg.Cmd, " ") != "nginx -g daemon off;" {
		t.Errorf("ENTRYPOINT %q CMD %q", cfg.Entrypoint, cfg.Cmd)
	}
	h := cfg.Healthcheck
	if h == nil || !slices.Equal(h.Test, engine.Hardened.Health.Test) || h.Interval != engine.Hardened.Health.Interval || h.Retries != engine.Hardened.Health.Retries {
		t.Errorf("HEALTHCHECK %+v, want %+v", h, engine.Hardened.Health)
	}
	if got := cfg.Labels["org.opencontainers.image.base.name"]; got != base {
		t.Errorf("base.name label %q, want the build arg %q", got, base)
	}
	// Built with no platform, as the stack's default: the engine's own.
	server, err := e.ServerVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if inspect.Os != server.Os || inspect.Architecture != server.Arch {
		t.Errorf("platform %s/%s, want the engine's own %s/%s", inspect.Os, inspect.Architecture, server.Os, server.Arch)
	}
}

// TestImageAddsLittle reports the bytes the project's layers add over the base; the
// limit is the benchmark's business.
func TestImageAddsLittle(t *testing.T) {
	e := testbed.RequireEngine(t)
	tag, _, base := sharedApp(t, e)
	added, total, err := e.AddedBytes(context.Background(), tag, base)
	if err != nil {
		t.Fatal(err)
	}
	if added == 0 {
		t.Fatal("the project's layers add 0 bytes: the page and config are missing")
	}
	t.Logf("project layers add %d bytes over %s; image total %d bytes", added, base, total)
}

func TestHardenedContainerServesTheSite(t *testing.T) {
	e := testbed.RequireEngine(t)
	ctx := context.Background()
	tag, _, _ := sharedApp(t, e)
	id, baseURL := e.RunHardened(t, tag)

	served, err := testbed.WaitServed(baseURL, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page served %s after start", served.Round(time.Millisecond))
	if err := testbed.CheckSite(baseURL, appDir); err != nil {
		t.Fatal(err)
	}

	healthy, err := e.WaitHealthy(ctx, id, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("healthy %s after the page was served", healthy.Round(time.Millisecond))

	inspect, err := e.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	hc := inspect.HostConfig
	if !hc.ReadonlyRootfs || !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") || hc.Memory == 0 {
		t.Errorf("container not hardened: readOnly %v capDrop %v securityOpt %v memory %d", hc.ReadonlyRootfs, hc.CapDrop, hc.SecurityOpt, hc.Memory)
	}
	for _, probe := range []struct {
		cmd      []string
		wantCode int
		wantOut  string
	}{
		{cmd: []string{"id", "-u"}, wantCode: 0, wantOut: "101"},
		{cmd: []string{"touch", "/usr/share/nginx/html/index.html"}, wantCode: 1},
		{cmd: []string{"touch", "/etc/nginx/x"}, wantCode: 1},
		{cmd: []string{"touch", "/tmp/x"}, wantCode: 0},
	} {
		code, out, err := e.Exec(ctx, id, probe.cmd...)
		if err != nil {
			t.Fatal(err)
		}
		if code != probe.wantCode || !strings.Contains(out, probe.wantOut) {
			t.Errorf("%q in the container: exit %d output %q, want exit %d with %q", probe.cmd, code, out, probe.wantCode, probe.wantOut)
		}
	}

	start := time.Now()
	timeout := int(engine.Hardened.StopTimeout.Seconds())
	if err := e.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(start)
	inspect, err = e.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// nginx exits 0 on SIGQUIT; a stop that ran out of time would end in SIGKILL (137).
	if inspect.State.Running || inspect.State.ExitCode != 0 {
		t.Fatalf("docker stop did not end nginx gracefully: running %v exit code %d", inspect.State.Running, inspect.State.ExitCode)
	}
	t.Logf("graceful stop took %s", stopped.Round(time.Millisecond))
}

func TestPushPullAndNoSecretInImage(t *testing.T) {
	onMachineEngine.join(t)
	e := testbed.RequireEngine(t)
	ctx := context.Background()
	tag, id, _ := ownApp(t, e)

	password := "e2e-" + randomHex(t, 16)
	reg := testbed.RequireRegistry(t, "ci", password)

	const repository, imageTag = "e2e/custom-nginx", "v1"
	pushRef := reg.Addr + "/" + repository + ":" + imageTag
	if err := e.ImageTag(ctx, tag, pushRef); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.RemoveImage(pushRef) })

	t.Run("without or with wrong credentials the push is refused", func(t *testing.T) {
		checkPushRefused(ctx, t, e, reg, pushRef)
	})
	digest := pushWithCredentials(ctx, t, e, reg, pushRef, repository, imageTag)
	byDigest := reg.Addr + "/" + repository + "@" + digest
	outer := t
	t.Run("pulling back by digest gives the same image", func(t *testing.T) {
		// Drop every local name of the image so the pull really fetches it.
		e.RemoveImage(pushRef)
		e.RemoveImage(tag)
		outer.Cleanup(func() { e.RemoveImage(byDigest) }) // the next subtest uses it
		checkPullsBack(ctx, t, e, reg, byDigest, id)
	})
	t.Run("the password appears nowhere in the image or its container", func(t *testing.T) {
		checkNoSecretIn(ctx, t, e, byDigest, password)
	})
}

// checkPushRefused pushes pushRef to reg with no credentials and with a wrong password,
// and requires the registry to refuse both.
func checkPushRefused(ctx context.Context, t *testing.T, e *testbed.Engine, reg *testbed.Registry, pushRef string) {
	t.Helper()
	wrong := reg.Auth()
	wrong.Password = "not-" + reg.Password
	for name, auth := range map[string]*registry.AuthConfig{"none": nil, "wrong password": &wrong} {
		_, err := e.Push(ctx, pushRef, auth)
		if err == nil {
			t.Fatalf("push with %s credentials succeeded", name)
		}
		if msg := err.Error(); !strings.Contains(msg, "no basic auth credentials") && !strings.Contains(msg, "unauthorized") {
			t.Errorf("push with %s credentials: error %q does not say the credentials were refused", name, msg)
		} else {
			t.Logf("push with %s credentials refused: %s", name, msg)
		}
	}
}

// pushWithCredentials pushes pushRef to reg with its credentials and returns the digest,
// once the registry itself has repository:imageTag at that digest.
func pushWithCredentials(ctx context.Context, t *testing.T, e *testbed.Engine, reg *testbed.Registry, pushRef, repository, imageTag string) string {
	t.Helper()
	auth := reg.Auth()
	digest, err := e.Push(ctx, pushRef, &auth)
	if err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	registryDigest, err := reg.Digest(ctx, repository, imageTag)
	if err != nil {
		t.Fatal(err)
	}
	if registryDigest != digest {
		t.Fatalf("registry has %s:%s at %s, the push reported %s", repository, imageTag, registryDigest, digest)
	}
	t.Logf("pushed %s at %s", pushRef, digest)
	return digest
}

// checkPullsBack pulls byDigest from reg, the image id being gone from the engine, and
// requires the pulled image to be id.
func checkPullsBack(ctx context.Context, t *testing.T, e *testbed.Engine, reg *testbed.Registry, byDigest, id string) {
	t.Helper()
	if _, err := e.ImageInspect(ctx, id); err == nil {
		t.Fatalf("image %s still present locally; the pull would prove nothing", id)
	}
	if err := e.Pull(ctx, byDigest, reg.Auth()); err != nil {
		t.Fatal(err)
	}
	pulled, err := e.ImageInspect(ctx, byDigest)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.ID != id {
		t.Fatalf("pulled image ID %s, built %s", pulled.ID, id)
	}
}

// checkNoSecretIn requires that secret appears in none of the places an image or a
// container of it shows: history, inspects, and every file of every layer.
func checkNoSecretIn(ctx context.Context, t *testing.T, e *testbed.Engine, ref, secret string) {
	t.Helper()
	created, err := e.ContainerCreate(ctx, &container.Config{Image: ref}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.RemoveContainer(created.ID) })
	for place, read := range imagePlaces(ctx, e, ref, created.ID) {
		content, err := read()
		if err != nil {
			t.Fatalf("%s: %v", place, err)
		}
		if len(content) == 0 {
			t.Fatalf("%s: nothing read", place)
		}
		if bytes.Contains(content, []byte(secret)) {
			t.Errorf("the registry password is in %s", place)
		}
	}
}

// imagePlaces reads, by the name of the docker command that shows it, what the engine
// shows of image ref and of its container containerID.
func imagePlaces(ctx context.Context, e *testbed.Engine, ref, containerID string) map[string]func() ([]byte, error) {
	return map[string]func() ([]byte, error){
		"docker history --no-trunc": func() ([]byte, error) {
			h, err := e.ImageHistory(ctx, ref)
			if err != nil {
				return nil, err
			}
			return json.Marshal(h)
		},
		"docker image inspect": func() ([]byte, error) {
			_, raw, err := e.ImageInspectWithRaw(ctx, ref)
			return raw, err
		},
		"docker container inspect": func() ([]byte, error) {
			_, raw, err := e.ContainerInspectWithRaw(ctx, containerID, false)
			return raw, err
		},
		"every file of every layer (docker save)": func() ([]byte, error) {
			return e.SavedFiles(ctx, ref)
		},
	}
}

// TestSavedFilesReadsLayers keeps the secret scan honest: the scan must find what is in the image.
func TestSavedFilesReadsLayers(t *testing.T) {
	e := testbed.RequireEngine(t)
	tag, _, _ := sharedApp(t, e)
	content, err := e.SavedFiles(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(appDir + "/html/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(content, page) {
		t.Fatal("docker save contents do not include the page: the secret scan would be blind")
	}
}
