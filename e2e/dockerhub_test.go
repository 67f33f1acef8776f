//go:build linux

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/go-connections/nat"

	"github.com/example/custom-nginx/internal/testbed"
)

// hubAccounts are the test Hub's users: alice and bob with passwords, alice also with a
// read-only access token, and one private repository of alice's (every other one is
// public, as Hub makes new repositories).
func hubAccounts(t *testing.T) testbed.HubAccounts {
	return testbed.HubAccounts{
		Users:          map[string]string{"alice": "pw-" + randomHex(t, 12), "bob": "pw-" + randomHex(t, 12)},
		ReadOnlyTokens: map[string]string{"alice": "dckr_pat_ro_" + randomHex(t, 12)},
		Private:        []string{"alice/private"},
	}
}

// TestDockerHub starts the tests' own Docker Hub and checks, through its dedicated engine,
// Hub's rules as a user meets them: the base pulled anonymously, docker login, a push to
// one's own namespace and a pull back, a read-only token that pulls but cannot push, a
// wrong password, a foreign namespace, public and private repositories; and that Hub's
// names lead to the test Hub inside its namespaces only.
func TestDockerHub(t *testing.T) {
	offMachineEngine.join(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	accounts := hubAccounts(t)
	hub := testbed.StartDockerHub(t, testbed.HubOptions{Accounts: accounts, AppDir: "../app"})
	e := hub.Engine
	if images, err := e.ImageList(ctx, image.ListOptions{All: true}); err != nil || len(images) != 0 {
		t.Fatalf("the Hub's engine holds %d images after the base was pushed (%v); want none", len(images), err)
	}

	t.Run("names and trust inside only", func(t *testing.T) { checkHubNamesInsideOnly(t, hub) })
	t.Run("build pulls its base from the Hub", func(t *testing.T) { checkHubBaseBuild(ctx, t, hub) })
	if err := e.Pull(ctx, hub.BaseImage, registry.AuthConfig{}); err != nil {
		t.Fatalf("anonymous pull of %s: %v", hub.BaseImage, err)
	}
	t.Run("login", func(t *testing.T) { checkHubLogin(ctx, t, hub) })
	t.Run("push and pull", func(t *testing.T) { checkHubPushPull(ctx, t, hub, accounts) })
	t.Run("private repository", func(t *testing.T) { checkHubPrivate(ctx, t, hub) })
	t.Run("published port", func(t *testing.T) { checkHubForward(ctx, t, hub) })
	t.Run("pulumi wrapper", func(t *testing.T) { checkHubPulumi(t, hub) })
	checkHubTokenLog(t, hub, accounts)
}

// checkHubNamesInsideOnly: inside the namespaces curl reaches the test registry over
// trusted TLS and gets Hub's challenge; outside, the same URL does not reach it.
func checkHubNamesInsideOnly(t *testing.T, hub *testbed.DockerHub) {
	if _, err := exec.LookPath("curl"); err != nil {
		testbed.Unavailable(t, "no curl", "apt-get install -y curl")
	}
	url := "https://" + testbed.HubRegistryHost + "/v2/"
	out, err := hub.Command("curl", "-sS", "-o", "/dev/null", "-D", "-", url).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s inside the Hub's namespaces: %v\n%s", url, err, out)
	}
	headers := strings.ToLower(string(out))
	challenge := `www-authenticate: bearer realm="` + testbed.HubRealm + `",service="` + testbed.HubService + `"`
	if !strings.Contains(strings.SplitN(headers, "\n", 2)[0], " 401") || !strings.Contains(headers, strings.ToLower(challenge)) {
		t.Errorf("curl %s inside: want 401 with %s, got:\n%s", url, challenge, out)
	}
	// Outside, with the test CA trusted: only the test Hub could answer that TLS handshake.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(hub.CA.PEM), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("curl", "-sS", "--max-time", "10", "--cacert", caFile, "-o", "/dev/null", "-D", "-", url).CombinedOutput()
	if err == nil {
		t.Errorf("curl %s outside the namespaces reached a server the test CA vouches for:\n%s", url, out)
	} else {
		t.Logf("outside the namespaces, as it should: %s", strings.TrimSpace(string(out)))
	}
}

// checkHubBaseBuild: a build of app/ on the Dockerfile's own base (no local copy in the
// engine) pulls it from the Hub, anonymously.
func checkHubBaseBuild(ctx context.Context, t *testing.T, hub *testbed.DockerHub) {
	pinned, err := testbed.DefaultBaseImage("../app")
	if err != nil {
		t.Fatal(err)
	}
	tag := "custom-nginx-hub-build:" + randomHex(t, 4)
	before := len(hub.Tokens.Log())
	id, err := hub.Engine.BuildApp(ctx, testbed.AppBuild{Dir: "../app", Tag: tag, Base: pinned})
	if err != nil {
		t.Fatalf("building app/ on %s in the Hub's engine: %v", pinned, err)
	}
	t.Logf("built %s (%.19s) on %s pulled from the Hub", tag, id, pinned)
	hub.Engine.RemoveImage(tag)
	hub.Engine.RemoveImage(hub.BaseImage)
	pulls := strings.Join(hub.Tokens.Log()[before:], "\n")
	if !strings.Contains(pulls, "anonymous: granted [repository:library/nginx:pull]") {
		t.Errorf("the build asked the token service for no anonymous pull of library/nginx:\n%s", pulls)
	}
}

// checkHubLogin: docker login (the engine's /auth) takes alice's password and refuses a
// wrong one with Hub's message.
func checkHubLogin(ctx context.Context, t *testing.T, hub *testbed.DockerHub) {
	ok, err := hub.Engine.RegistryLogin(ctx, hub.Auth("alice"))
	if err != nil || ok.Status != "Login Succeeded" {
		t.Errorf("login as alice: %+v, %v; want Login Succeeded", ok, err)
	}
	_, err = hub.Engine.RegistryLogin(ctx, testbed.HubAuth("alice", "wrong"))
	if err == nil || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Errorf("login with a wrong password: %v; want incorrect username or password", err)
	} else {
		t.Logf("login with a wrong password: %v", err)
	}
}

// checkHubPushPull: alice pushes to her namespace and pulls it back; anonymous pulls her
// public repository; her read-only token pulls but cannot push; a wrong password and a
// foreign namespace are refused.
func checkHubPushPull(ctx context.Context, t *testing.T, hub *testbed.DockerHub, accounts testbed.HubAccounts) {
	e := hub.Engine
	ref := "docker.io/alice/custom-nginx:v1"
	alice := hub.Auth("alice")
	digest, err := tagAndPush(ctx, e, hub.BaseImage, ref, &alice)
	if err != nil {
		t.Fatalf("alice pushing %s: %v", ref, err)
	}
	readOnly := testbed.HubAuth("alice", accounts.ReadOnlyTokens["alice"])
	for _, who := range []struct {
		name string
		auth registry.AuthConfig
	}{{"alice", alice}, {"anonymous", registry.AuthConfig{}}, {"alice's read-only token", readOnly}} {
		e.RemoveImage(ref)
		if err := e.Pull(ctx, ref, who.auth); err != nil {
			t.Errorf("%s pulling %s: %v", who.name, ref, err)
			continue
		}
		inspect, err := e.ImageInspect(ctx, ref)
		if err != nil || !slices.Contains(inspect.RepoDigests, "alice/custom-nginx@"+digest) {
			t.Errorf("%s pulled %s: digests %v (%v), want alice/custom-nginx@%s", who.name, ref, inspect.RepoDigests, err, digest)
		}
	}
	for _, refused := range []struct {
		what, ref string
		auth      registry.AuthConfig
	}{
		{"alice's read-only token pushing", "docker.io/alice/custom-nginx:ro", readOnly},
		{"a wrong password pushing", "docker.io/alice/custom-nginx:wrong", testbed.HubAuth("alice", "wrong")},
		{"alice pushing to bob's namespace", "docker.io/bob/custom-nginx:v1", alice},
	} {
		_, err := tagAndPush(ctx, e, hub.BaseImage, refused.ref, &refused.auth)
		if err == nil {
			t.Errorf("%s %s: succeeded, want refused", refused.what, refused.ref)
		} else {
			t.Logf("%s %s: %v", refused.what, refused.ref, err)
		}
	}
}

// checkHubPrivate: a private repository is pulled by its owner only.
func checkHubPrivate(ctx context.Context, t *testing.T, hub *testbed.DockerHub) {
	e := hub.Engine
	ref := "docker.io/alice/private:v1"
	if _, err := tagAndPush(ctx, e, hub.BaseImage, ref, new(hub.Auth("alice"))); err != nil {
		t.Fatalf("alice pushing %s: %v", ref, err)
	}
	e.RemoveImage(ref)
	for name, auth := range map[string]registry.AuthConfig{"anonymous": {}, "bob": hub.Auth("bob")} {
		if err := e.Pull(ctx, ref, auth); err == nil {
			t.Errorf("%s pulled alice's private %s", name, ref)
			e.RemoveImage(ref)
		} else {
			t.Logf("%s pulling alice's private %s: %v", name, ref, err)
		}
	}
	if err := e.Pull(ctx, ref, hub.Auth("alice")); err != nil {
		t.Errorf("alice pulling her private %s: %v", ref, err)
	}
}

// tagAndPush tags src as ref in e and pushes it; the tag is removed afterwards.
func tagAndPush(ctx context.Context, e *testbed.Engine, src, ref string, auth *registry.AuthConfig) (string, error) {
	if err := e.ImageTag(ctx, src, ref); err != nil {
		return "", err
	}
	defer e.RemoveImage(ref)
	return e.Push(ctx, ref, auth)
}

// checkHubForward: a container of the Hub's engine publishes a port inside the network
// namespace; Forward brings it to the host.
func checkHubForward(ctx context.Context, t *testing.T, hub *testbed.DockerHub) {
	cfg := &container.Config{Image: hub.BaseImage, ExposedPorts: nat.PortSet{"80/tcp": {}}}
	hostCfg := &container.HostConfig{PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}}}
	id, inside, err := hub.Engine.Start(ctx, cfg, hostCfg)
	if id != "" {
		defer hub.Engine.RemoveContainer(id)
	}
	if err != nil {
		t.Fatalf("running the base in the Hub's engine: %v", err)
	}
	insideAddr := strings.TrimSuffix(strings.TrimPrefix(inside, "http://"), "/")
	fwd, err := hub.Forward(insideAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + fwd.Addr + "/")
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/ (relayed to %s inside): %v", fwd.Addr, insideAddr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(body), "nginx") {
		t.Errorf("http://%s/ (%s inside) served %q, want the base's nginx page", fwd.Addr, insideAddr, body)
	}
}

// checkHubPulumi: the Automation API runs the wrapped pulumi, and it runs inside.
func checkHubPulumi(t *testing.T, hub *testbed.DockerHub) {
	if _, err := exec.LookPath("pulumi"); err != nil {
		testbed.Unavailable(t, "no pulumi on PATH", `eval "$(bash ../shared/pulumi/install)"`)
	}
	cmd, err := hub.PulumiCommand()
	if err != nil {
		t.Fatalf("the Automation API with the wrapped pulumi: %v", err)
	}
	t.Logf("wrapped pulumi %s", cmd.Version())
	root, err := hub.PulumiRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A backend at https://registry-1.docker.io: only inside do that name and its
	// certificate lead anywhere, to the test registry, which has no Pulumi API.
	whoami := exec.Command(filepath.Join(root, "bin", "pulumi"), "whoami", "--non-interactive")
	whoami.Dir = t.TempDir()
	whoami.Env = append(os.Environ(), "PULUMI_BACKEND_URL=https://"+testbed.HubRegistryHost,
		"PULUMI_ACCESS_TOKEN=none", "PULUMI_HOME="+t.TempDir(), "PULUMI_SKIP_UPDATE_CHECK=true")
	out, err := whoami.CombinedOutput()
	t.Logf("wrapped pulumi whoami against %s: %v: %s", testbed.HubRegistryHost, err, strings.TrimSpace(string(out)))
	if !strings.Contains(string(out), "404 page not found") { // distribution's answer to an unknown path
		t.Errorf("the wrapped pulumi did not reach the test registry: %s", out)
	}
	for _, outside := range []string{"no such host", "x509", "certificate"} {
		if strings.Contains(string(out), outside) {
			t.Errorf("the wrapped pulumi did not reach the test registry (%q): %s", outside, out)
		}
	}
}

// checkHubTokenLog: the token service logged the scopes it granted and refused, and no
// password or token.
func checkHubTokenLog(t *testing.T, hub *testbed.DockerHub, accounts testbed.HubAccounts) {
	log := strings.Join(hub.Tokens.Log(), "\n")
	for _, want := range []string{
		"granted [repository:alice/custom-nginx:pull,push]",
		"refused [repository:bob/custom-nginx:push]",
		"alice (read-only token): granted [repository:alice/custom-nginx:pull]; refused [repository:alice/custom-nginx:push]",
		"incorrect username or password",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the token service's log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{accounts.Users["alice"], accounts.Users["bob"], accounts.ReadOnlyTokens["alice"]} {
		if strings.Contains(log, secret) {
			t.Errorf("the token service's log holds a password or token")
		}
	}
}
