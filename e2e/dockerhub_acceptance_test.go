//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
)

// TestAcceptanceDockerHub runs the stack as a user with a Docker Hub account meets it, on
// the tests' own Docker Hub (HTTPS, token auth, scopes) with the project's defaults left as
// they are: registryServer docker.io, the Dockerfile's pinned base pulled from
// docker.io/library/nginx, repository <user>/custom-nginx. The CLI, the plugins, the
// program and a dedicated engine all run inside the Hub's namespaces.
func TestAcceptanceDockerHub(t *testing.T) {
	offMachineEngine.join(t)
	l := newHubLife(t, false, nil)
	runLife(t, "the Docker Hub stack's life", func(t *testing.T) { expectNoThrowaway(t, l.hub.Engine, "") }, []lifeStep{
		{"first up pulls the base from the Hub, pushes and serves", l.firstUp},
		{"no-op up changes nothing", l.noOpUp},
		{"page change", l.pageChange},
		{"a read-only token fails before the build", l.readOnlyToken},
		{"a repository outside the namespace fails before the build", l.foreignRepository},
		{"a wrong password fails before the build", l.wrongPassword},
		{"credentials fixed, the change rolls out", l.fixed},
		{"the password is in plain text nowhere", l.noPlainPassword},
		{"destroy", l.destroy},
		{"an engine without the build pulls the tag and serves the page", l.pulledFresh},
	}) // the token service logs what it granted and refused for each request as it goes
}

// hubUser is the Hub account the stack pushes as.
const hubUser = "alice"

// hubLife is what the steps of TestAcceptanceDockerHub share.
type hubLife struct {
	ctx       context.Context
	hub       *testbed.DockerHub
	accounts  testbed.HubAccounts
	ws        *testbed.Workspace
	appFolder string
	stack     *testbed.Stack
	url       string   // the site, relayed from the Hub's network namespace to this host
	outputs   []string // everything the CLI printed, for the secrets check
}

// newHubLife starts the Hub (with arm64, its base serves arm64 too) and a stack on its
// engine with the credentials and extra; every other key keeps Pulumi.yaml's default.
func newHubLife(t *testing.T, arm64 bool, extra auto.ConfigMap) *hubLife {
	requireToolchain(t)
	l := &hubLife{ctx: context.Background(), accounts: hubAccounts(t)}
	l.hub = testbed.StartDockerHub(t, testbed.HubOptions{Accounts: l.accounts, AppDir: appDir, Arm64: arm64})
	cli, err := l.hub.PulumiCommand()
	if err != nil {
		t.Fatal(err)
	}
	l.ws = newWorkspace(t, l.hub.Socket)
	l.appFolder = filepath.Join(l.ws.Dir, "app")
	cfg := auto.ConfigMap{
		"registryUsername": {Value: hubUser},
		"registryPassword": {Value: l.password(), Secret: true},
	}
	maps.Copy(cfg, extra)
	l.stack = newStack(t, l.ws, "hub"+randomHex(t, 4), cfg, l.hub.Engine, auto.Pulumi(cli))
	site, err := l.hub.Forward("127.0.0.1:8080") // the default hostPort, inside
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	l.url = "http://" + site.Addr + "/"
	return l
}

func (l *hubLife) password() string { return l.accounts.Users[hubUser] }

// up runs `pulumi up` and keeps what it printed.
func (l *hubLife) up(t *testing.T) run {
	t.Helper()
	r := up(t, l.stack)
	l.outputs = append(l.outputs, r.allOutput())
	return r
}

func (l *hubLife) mustUp(t *testing.T) run {
	t.Helper()
	r := l.up(t)
	if r.err != nil {
		t.Fatalf("pulumi up: %v", r.err)
	}
	return r
}

func (l *hubLife) firstUp(t *testing.T) {
	r := l.mustUp(t)
	expectChanges(t, r, map[string]int{"create": 9}) // the stack, the component and its seven children
	// BuildKit keeps the base in its own store, not in the engine's images: the token
	// service's log and the build's output show the pull.
	if !slices.ContainsFunc(l.hub.Tokens.Log(), func(line string) bool { return strings.Contains(line, "granted [repository:library/nginx:pull]") }) ||
		!strings.Contains(r.allOutput(), "resolve "+l.hub.BaseImage) {
		t.Errorf("the build did not pull its base %s from the Hub", l.hub.BaseImage)
	}
	if got, want := r.out("imageRef"), "docker.io/"+hubUser+"/custom-nginx@"+l.pushedDigest(t); got != want {
		t.Errorf("imageRef %s, want %s (the digest the Hub reports)", got, want)
	}
	if got, want := r.out("repoUrl"), "https://hub.docker.com/r/"+hubUser+"/custom-nginx"; got != want {
		t.Errorf("repoUrl %s, want %s", got, want)
	}
	expectSite(t, l.url, l.appFolder, "after the first up")
}

// aRollout is what `up` changes for a new page: the image updated; the push check, the
// preflight, the push, nginx and the smoke check replaced; the stack, the component and the
// port holder the same.
var aRollout = map[string]int{"update": 1, "replace": 5, "same": 3}

// expectChanges fails unless the up changed exactly as want says (the Automation API's
// summary: the CLI runs inside the Hub's network namespace, out of reach of the API's event
// server on this host's loopback).
func expectChanges(t *testing.T, r run, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for op, n := range *r.up.Summary.ResourceChanges {
		if n > 0 {
			got[op] = n
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("up changed %v, want %v", got, want)
	}
}

// builtImage is the image the stack's state says it built last.
func (l *hubLife) builtImage(t *testing.T) string {
	t.Helper()
	resources, err := l.stack.StackResources()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resources {
		if string(r.Type) == pulumimock.TypeImage {
			return fmt.Sprint(r.Outputs["repoDigest"])
		}
	}
	return ""
}

// pushedDigest is the digest the Hub's registry reports for the stack's tag, asked as the
// user, through the Hub's namespace and trust.
func (l *hubLife) pushedDigest(t *testing.T) string {
	t.Helper()
	ref, err := name.ParseReference(testbed.HubRegistryHost + "/" + hubUser + "/custom-nginx:v1")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref, l.remote()...)
	if err != nil {
		t.Fatalf("asking the Hub for %s: %v", ref, err)
	}
	return desc.Digest.String()
}

// remote is go-containerregistry's way to the Hub as the user, through its namespace and trust.
func (l *hubLife) remote() []remote.Option {
	return []remote.Option{remote.WithContext(l.ctx), remote.WithTransport(l.hub.HTTPClient().Transport),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: hubUser, Password: l.password()}))}
}

func (l *hubLife) noOpUp(t *testing.T) {
	expectChanges(t, l.mustUp(t), map[string]int{"same": 9})
}

func (l *hubLife) pageChange(t *testing.T) {
	changePage(t, l.ws, "changed on Docker Hub")
	expectChanges(t, l.mustUp(t), aRollout)
	expectSite(t, l.url, l.appFolder, "after the page change")
}

// failsBeforeBuild changes the page, sets key to value and runs the up that must fail at
// the push check, saying says: nothing built, the old page still served.
func (l *hubLife) failsBeforeBuild(t *testing.T, key string, value auto.ConfigValue, says string) {
	t.Helper()
	before, err := servedPage(l.url)
	if err != nil {
		t.Fatal(err)
	}
	changePage(t, l.ws, "changed while "+key+" is wrong")
	if err := l.stack.SetConfig(l.ctx, key, value); err != nil {
		t.Fatal(err)
	}
	built := l.builtImage(t)
	r := l.up(t)
	if r.err == nil {
		t.Fatalf("up with a wrong %s succeeded", key)
	}
	if !strings.Contains(r.allOutput(), says) {
		t.Errorf("the failed up does not say %q:\n%s", says, r.allOutput())
	}
	if now := l.builtImage(t); now != built {
		t.Errorf("the failed up built %s: the push check must come first", now)
	}
	expectPage(t, l.url, before, "after the up that failed on "+key)
}

func (l *hubLife) readOnlyToken(t *testing.T) {
	l.failsBeforeBuild(t, "registryPassword", auto.ConfigValue{Value: l.accounts.ReadOnlyTokens[hubUser], Secret: true},
		"config registryPassword: the token of alice may pull but not push alice/custom-nginx, as a read-only access token")
}

func (l *hubLife) foreignRepository(t *testing.T) {
	if err := l.stack.SetConfig(l.ctx, "registryPassword", auto.ConfigValue{Value: l.password(), Secret: true}); err != nil {
		t.Fatal(err)
	}
	l.failsBeforeBuild(t, "repository", auto.ConfigValue{Value: "bob/custom-nginx"},
		"config repository: alice may not push to bob/custom-nginx, which is not in the namespace alice")
	if err := l.stack.RemoveConfig(l.ctx, "repository"); err != nil {
		t.Fatal(err)
	}
}

func (l *hubLife) wrongPassword(t *testing.T) {
	l.failsBeforeBuild(t, "registryPassword", auto.ConfigValue{Value: "wrong-" + randomHex(t, 8), Secret: true},
		"config registryPassword: docker.io refused the login of alice (HTTP 401: incorrect username or password)")
}

func (l *hubLife) fixed(t *testing.T) {
	if err := l.stack.SetConfig(l.ctx, "registryPassword", auto.ConfigValue{Value: l.password(), Secret: true}); err != nil {
		t.Fatal(err)
	}
	expectChanges(t, l.mustUp(t), aRollout)
	expectSite(t, l.url, l.appFolder, "with the credentials fixed")
}

// noPlainPassword: neither the password nor the read-only token is in the state, the
// stack's config file, what the CLI printed, the token service's log or the docker
// config the stack ran with.
func (l *hubLife) noPlainPassword(t *testing.T) {
	places := map[string]string{"the CLI's output": strings.Join(l.outputs, "\n"), "the token service's log": strings.Join(l.hub.Tokens.Log(), "\n")}
	for _, dir := range []string{l.ws.Backend, l.ws.Dir, l.ws.Env["DOCKER_CONFIG"]} {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !strings.Contains(path, string(filepath.Separator)+".pulumi"+string(filepath.Separator)+"bin") {
				if b, err := os.ReadFile(path); err == nil {
					places[path] = string(b)
				}
			}
			return nil
		})
	}
	for where, text := range places {
		for _, secret := range []string{l.password(), l.accounts.ReadOnlyTokens[hubUser]} {
			if strings.Contains(text, secret) {
				t.Errorf("a Hub credential is in plain text in %s", where)
			}
		}
	}
	if len(places) < 4 {
		t.Errorf("the secrets check read only %d places: it would prove nothing", len(places))
	}
}

func (l *hubLife) destroy(t *testing.T) {
	if _, err := l.stack.Destroy(l.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := servedPage(l.url); err == nil {
		t.Error("the page is still served after destroy")
	}
}

// pulledFresh: with every image gone from the Hub's engine, the user's tag is pulled back
// from the Hub with the user's credentials and serves the page, byte for byte.
func (l *hubLife) pulledFresh(t *testing.T) {
	e := l.hub.Engine
	images, err := e.ImageList(l.ctx, image.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		if _, err := e.ImageRemove(l.ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Fatal(err)
		}
	}
	tag := "docker.io/" + hubUser + "/custom-nginx:v1"
	if err := e.Pull(l.ctx, tag, l.hub.Auth(hubUser)); err != nil {
		t.Fatalf("pulling %s from the Hub: %v", tag, err)
	}
	_, base := e.RunHardened(t, tag) // published inside the Hub's network namespace
	site, err := l.hub.Forward(strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	url := "http://" + site.Addr + "/"
	if _, err := testbed.WaitServed(url, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(l.ws.Page())
	if err != nil {
		t.Fatal(err)
	}
	expectPage(t, url, page, "from the tag pulled back")
}
