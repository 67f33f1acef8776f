package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"golang.org/x/mod/modfile"
	"gopkg.in/yaml.v3"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
)

// providerModules are the provider SDKs whose plugins `pulumi up` loads, at the versions
// go.mod pins.
var providerModules = map[string]string{
	"docker":  "github.com/pulumi/pulumi-docker/sdk/v4",
	"command": "github.com/pulumi/pulumi-command/sdk",
}

// requireToolchain skips (or, under CI, fails) a test that needs a real `pulumi up`,
// naming what this machine lacks: the CLI, the Go language host, or a provider plugin at
// the version go.mod pins.
func requireToolchain(t *testing.T) {
	t.Helper()
	const fix = `install the Pulumi CLI (https://www.pulumi.com/docs/install/; plugins download by themselves), or offline: eval "$(bash ../shared/pulumi/install)"`
	cli, err := exec.LookPath("pulumi")
	if err != nil {
		testbed.Unavailable(t, "no Pulumi CLI on PATH (a real `pulumi up` needs it, the Go language host and the docker and command plugins)", fix)
	}
	if _, err := exec.LookPath("pulumi-language-go"); err != nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(cli), "pulumi-language-go")); err != nil {
			testbed.Unavailable(t, "no Go language host (pulumi-language-go next to pulumi or on PATH)", fix)
		}
	}
	goMod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.Parse("go.mod", goMod, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cli, "plugin", "ls", "--json").Output()
	if err != nil {
		t.Fatalf("pulumi plugin ls: %v", err)
	}
	var installed []struct{ Name, Kind, Version string }
	if err := json.Unmarshal(out, &installed); err != nil {
		t.Fatalf("pulumi plugin ls --json: %v", err)
	}
	for name, module := range providerModules {
		i := slices.IndexFunc(mod.Require, func(r *modfile.Require) bool { return r.Mod.Path == module })
		if i < 0 {
			t.Fatalf("go.mod does not require %s", module)
		}
		version := strings.TrimPrefix(mod.Require[i].Mod.Version, "v")
		if !slices.ContainsFunc(installed, func(p struct{ Name, Kind, Version string }) bool {
			return p.Kind == "resource" && p.Name == name && p.Version == version
		}) {
			testbed.Unavailable(t, fmt.Sprintf("no %s provider plugin v%s (pulumi plugin install resource %s %s)", name, version, name, version), fix)
		}
	}
}

// newWorkspace is a project copy with a file backend of its own, as a user without a
// Pulumi account has it, whose stacks run the docker provider against dockerHost ("" for
// the local engine, whatever the developer's DOCKER_HOST says).
func newWorkspace(t *testing.T, dockerHost string) *testbed.Workspace {
	t.Helper()
	return newWorkspaceOf(t, "..", dockerHost)
}

// newWorkspaceOf is newWorkspace of the project at root.
func newWorkspaceOf(t *testing.T, root, dockerHost string) *testbed.Workspace {
	t.Helper()
	w, err := testbed.NewWorkspace(root, t.TempDir(), "acceptance-"+randomHex(t, 8), dockerHost)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// newStack creates a stack of w with cfg and, when the test ends, destroys it, removes it
// and removes the images its ups built on engine (nil: it builds nothing).
func newStack(t *testing.T, w *testbed.Workspace, name string, cfg auto.ConfigMap, engine *testbed.Engine, opts ...auto.LocalWorkspaceOption) *testbed.Stack {
	t.Helper()
	ctx := context.Background()
	s, err := w.NewStack(ctx, name, cfg, engine, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Remove(ctx); err != nil {
			t.Logf("removing stack %s: %v", name, err)
		}
	})
	return s
}

// changePage adds a line to the workspace's custom page and returns the page before and after.
func changePage(t *testing.T, w *testbed.Workspace, line string) (before, after []byte) {
	t.Helper()
	before, err := os.ReadFile(w.Page())
	if err != nil {
		t.Fatal(err)
	}
	after = []byte(strings.Replace(string(before), "</main>", "<p>"+line+"</p>\n</main>", 1))
	if err := os.WriteFile(w.Page(), after, 0o644); err != nil {
		t.Fatal(err)
	}
	return before, after
}

// stateResources is what the file backend stores for the stack, secrets encrypted.
func stateResources(t *testing.T, s *testbed.Stack) []apitype.ResourceV3 {
	t.Helper()
	resources, err := s.StackResources()
	if err != nil {
		t.Fatal(err)
	}
	return resources
}

// run is one `pulumi up` through the Automation API: its result, everything
// the CLI printed, and the steps per resource type.
type run struct {
	up     auto.UpResult
	output string
	steps  *stepsByType
	err    error
}

func (r run) out(name string) string { return fmt.Sprint(r.up.Outputs[name].Value) }

// allOutput is what a person saw: the CLI's output and the error the API returned.
func (r run) allOutput() string {
	if r.err != nil {
		return r.output + "\n" + r.err.Error()
	}
	return r.output
}

// up is one `pulumi up` of s, its output in the test log.
func up(t *testing.T, s *testbed.Stack, opts ...optup.Option) run {
	t.Helper()
	var output bytes.Buffer
	w := io.MultiWriter(&output, testWriter{t})
	r := run{steps: &stepsByType{}}
	opts = append(opts, optup.ProgressStreams(w), optup.ErrorProgressStreams(w), optup.EventStreams(r.steps.stream()))
	r.up, r.err = s.Up(context.Background(), opts...)
	r.output = output.String()
	t.Logf("up steps: %v", r.steps.all())
	return r
}

// mustUp is an up that has to succeed.
func mustUp(t *testing.T, s *testbed.Stack, opts ...optup.Option) run {
	t.Helper()
	r := up(t, s, opts...)
	if r.err != nil {
		t.Fatalf("pulumi up: %v", r.err)
	}
	return r
}

// expectSteps fails unless the run changed exactly these resource types in these ways.
func (r run) expectSteps(t *testing.T, want map[string]string) {
	t.Helper()
	got := r.steps.all()
	for typ, ops := range want {
		if got[typ] != ops {
			t.Errorf("%s steps %q, want %q", typ, got[typ], ops)
		}
	}
	for typ, ops := range got {
		if _, ok := want[typ]; !ok {
			t.Errorf("unexpected %s steps %q", typ, ops)
		}
	}
}

// stepsByType collects the engine's step operations per resource type: one per changed
// resource ("update", "replace", …), leaving out the halves of a replacement, "same" and
// "refresh".
type stepsByType struct {
	mu  sync.Mutex
	ops map[string][]string
}

func (o *stepsByType) stream() chan<- events.EngineEvent {
	ch := make(chan events.EngineEvent)
	o.ops = map[string][]string{}
	go func() {
		for e := range ch {
			if e.ResourcePreEvent == nil {
				continue
			}
			md := e.ResourcePreEvent.Metadata
			switch md.Op {
			case apitype.OpSame, apitype.OpCreateReplacement, apitype.OpDeleteReplaced, apitype.OpRead,
				apitype.OpDiscardReplaced, apitype.OpRemovePendingReplace, apitype.OpRefresh:
				continue
			}
			if md.Type == "pulumi:pulumi:Stack" || md.Type == pulumimock.TypeSite || strings.HasPrefix(md.Type, "pulumi:providers:") {
				continue
			}
			o.mu.Lock()
			o.ops[md.Type] = append(o.ops[md.Type], string(md.Op))
			o.mu.Unlock()
		}
	}()
	return ch
}

func (o *stepsByType) all() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	all := map[string]string{}
	for typ, ops := range o.ops {
		all[typ] = strings.Join(ops, ",")
	}
	return all
}

// servedPage returns the body served at url.
func servedPage(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// expectPage fails unless url serves exactly page, byte for byte.
func expectPage(t *testing.T, url string, page []byte, what string) {
	t.Helper()
	got, err := servedPage(url)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(got, page) {
		t.Fatalf("%s: %s serves a page of %d bytes, not the expected %d bytes", what, url, len(got), len(page))
	}
}

// expectSite fails unless url serves the site of appFolder (testbed.CheckSite).
func expectSite(t *testing.T, url, appFolder, when string) {
	t.Helper()
	if err := testbed.CheckSite(url, appFolder); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
}

// expectPushed fails unless the registry holds repository:tag and imageRef names that
// digest; it returns the reference.
func expectPushed(t *testing.T, reg *testbed.Registry, repository, tag, imageRef string) string {
	t.Helper()
	digest, err := reg.Digest(context.Background(), repository, tag)
	if err != nil {
		t.Fatalf("%s:%s is not in the registry: %v", repository, tag, err)
	}
	want := reg.Addr + "/" + repository + "@" + digest
	if imageRef != want {
		t.Errorf("imageRef %q, registry has %q", imageRef, want)
	}
	return want
}

// mustFail is an up that has to fail, because of what.
func mustFail(t *testing.T, s *testbed.Stack, what string) run {
	t.Helper()
	r := up(t, s)
	if r.err == nil {
		t.Fatalf("up %s succeeded", what)
	}
	return r
}

// portFree reports whether nothing listens on the host port any more.
func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	return l.Close()
}

func localURL(port int) string { return fmt.Sprintf("http://localhost:%d/", port) }

// acceptanceSetup gives an acceptance test what every `pulumi up` here needs: the toolchain
// (or a skip naming what is missing), the engine, the base image to build on, and a
// registry of its own with a random password.
func acceptanceSetup(t *testing.T) (*testbed.Engine, string, *testbed.Registry) {
	t.Helper()
	requireToolchain(t)
	e := testbed.RequireEngine(t)
	base, err := testbed.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	reg := testbed.RequireRegistry(t, "acceptance", "acc-"+randomHex(t, 16))
	return e, base, reg
}

// lifeStep is one step of a stack's life, run as a subtest.
type lifeStep struct {
	name string
	run  func(t *testing.T)
}

// runLife runs the steps of a stack's life in order, with afterEach after each, and logs
// how long it took. Each step builds on the state the one before left: it stops at the
// first that fails.
func runLife(t *testing.T, life string, afterEach func(t *testing.T), steps []lifeStep) {
	started := time.Now()
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.run(t); afterEach(t) }) {
			t.FailNow()
		}
	}
	t.Logf("%s took %s", life, time.Since(started).Round(time.Second))
}

// TestAcceptance runs one stack's life through the real CLI, engine and registry: the
// first deployment, re-runs, config changes and the faults a deployment meets, the page
// checked after each; then a second stack beside it, and destroy.
func TestAcceptance(t *testing.T) {
	onMachineEngine.join(t)
	l := newStackLife(t)
	runLife(t, "the stack's life", func(t *testing.T) { expectNoThrowaway(t, l.engine, runningName(l.stack.Name)) }, []lifeStep{
		{"first up", l.firstUp},
		{"no-op up changes nothing", l.noOpUp},
		{"page change", l.pageChange},
		{"a bad change leaves the site serving", l.badChangesKeepTheSiteUp},
		{"the password is stored only encrypted", l.passwordStoredEncrypted},
		{"hostPort changed", l.hostPortChanged},
		{"imageTag changed", l.imageTagChanged},
		{"push off and on again", l.pushOffAndOn},
		{"failed push keeps the old page", l.failedPushKeepsOldPage},
		{"registry down", l.registryDown},
		{"container removed behind Pulumi's back", l.containerRemoved},
		{"nginx crash restarts the container", l.nginxCrashRestarts},
		{"host port taken by another program", l.hostPortTaken},
		{"platform set explicitly", l.platformSetExplicitly},
		{"remote engine through DOCKER_HOST", l.remoteEngine},
		{"two stacks side by side", l.twoStacks},
		{"destroy", l.destroy},
	})
}

// acceptanceRepository is where the acceptance stack pushes.
const acceptanceRepository = "acceptance/custom-nginx"

// stackLife is what the steps of TestAcceptance share: the stack and what it runs on, and
// what the steps so far left behind (the port, URL and tag the site is at now).
type stackLife struct {
	ctx       context.Context
	engine    *testbed.Engine
	reg       *testbed.Registry
	password  string // the registry's right password
	ws        *testbed.Workspace
	appFolder string // the workspace's app/, which the page checks compare against
	config    auto.ConfigMap
	stack     *testbed.Stack
	port      int    // hostPort now
	url       string // where the site is served now
	tag       string // imageTag now
}

func newStackLife(t *testing.T) *stackLife {
	e, base, reg := acceptanceSetup(t)
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l := &stackLife{ctx: context.Background(), engine: e, reg: reg, password: reg.Password,
		ws: newWorkspace(t, e.DaemonHost()), port: port, url: localURL(port), tag: "v1"}
	l.appFolder = filepath.Join(l.ws.Dir, "app")
	l.config = testbed.PushingTo(reg, acceptanceRepository, port, base)
	l.config["imageTag"] = auto.ConfigValue{Value: l.tag}
	l.stack = newStack(t, l.ws, "acc"+randomHex(t, 4), l.config, e)
	return l
}

// containerName is the nginx container the stack runs now, as its output says.
func (l *stackLife) containerName(t *testing.T) string {
	t.Helper()
	out, err := l.stack.Outputs(l.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(out["containerName"].Value)
}

// expectNoContainerOf fails unless the engine has no container of the stack named stack:
// neither its port holder nor an nginx.
func expectNoContainerOf(t *testing.T, e *testbed.Engine, stack string) {
	t.Helper()
	left, err := e.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", runningName(stack)))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range left {
		t.Errorf("container %v of stack %s left after its destroy", c.Names, stack)
	}
}

func (l *stackLife) setConfig(t *testing.T, key string, value auto.ConfigValue) {
	t.Helper()
	if err := l.stack.SetConfig(l.ctx, key, value); err != nil {
		t.Fatal(err)
	}
}

func (l *stackLife) removeConfig(t *testing.T, key string) {
	t.Helper()
	if err := l.stack.RemoveConfig(l.ctx, key); err != nil {
		t.Fatal(err)
	}
}

// expectSite fails unless the stack's URL serves the workspace's site.
func (l *stackLife) expectSite(t *testing.T, when string) {
	t.Helper()
	expectSite(t, l.url, l.appFolder, when)
}

// expectPushed fails unless the registry holds the current tag and r's imageRef names it.
func (l *stackLife) expectPushed(t *testing.T, r run) {
	t.Helper()
	expectPushed(t, l.reg, acceptanceRepository, l.tag, r.out("imageRef"))
}

// registryRequests are the requests the stack's registry has answered so far.
func (l *stackLife) registryRequests(t *testing.T) []string {
	t.Helper()
	requests, err := l.reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return requests
}

// moveTo records that the site is published on port now.
func (l *stackLife) moveTo(port int) { l.port, l.url = port, localURL(port) }

func (l *stackLife) firstUp(t *testing.T) {
	r := mustUp(t, l.stack)
	r.expectSteps(t, map[string]string{pulumimock.TypeImage: "create", pulumimock.TypeRegistryImage: "create", pulumimock.TypeContainer: "create,create", pulumimock.TypeCommand: "create,create,create"}) // the port holder and nginx; the push check, the preflight and the smoke check
	if r.out("url") != l.url || r.out("repoUrl") != l.reg.Addr+"/"+acceptanceRepository || !regexp.MustCompile("^"+runningName(l.stack.Name)+"-[0-9a-f]{12}$").MatchString(r.out("containerName")) {
		t.Errorf("outputs url %q repoUrl %q containerName %q", r.out("url"), r.out("repoUrl"), r.out("containerName"))
	}
	l.expectPushed(t, r)
	// The program names the engine's platform: the provider has nothing to guess.
	if out := r.allOutput(); strings.Contains(out, providerPlatformWarning) {
		t.Errorf("with platform unset the provider still warns %q: the engine's platform was not named", providerPlatformWarning)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(r.out("imageId")) {
		t.Errorf("imageId %q", r.out("imageId"))
	}
	l.expectSite(t, "after the first up")
	// The page as a person sees it, from the container the stack runs.
	testbed.CheckInBrowser(t, l.url, l.appFolder, screenshotDir(t, "acceptance"))
}

// noOpUp: an up with nothing changed changes nothing and sends the registry no request:
// the push check runs only when a push will follow.
func (l *stackLife) noOpUp(t *testing.T) {
	t.Helper()
	before := l.registryRequests(t)
	if len(before) == 0 {
		t.Fatal("the registry logged no request of the first up's push: its request log does not work")
	}
	r := mustUp(t, l.stack, optup.ExpectNoChanges())
	if sent := l.registryRequests(t)[len(before):]; len(sent) > 0 {
		t.Errorf("the no-op up sent the registry %d requests:\n%s", len(sent), strings.Join(sent, "\n"))
	}
	for op, n := range *r.up.Summary.ResourceChanges {
		if op != "same" && n > 0 {
			t.Errorf("no-op up: %d %s, want only same: %v", n, op, *r.up.Summary.ResourceChanges)
		}
	}
}

// pageChange: a new page rolls out with no request failed or stalled. The new nginx starts
// beside the old one in the port holder's network, and the old one stops only after the
// smoke check has seen the new page.
func (l *stackLife) pageChange(t *testing.T) {
	_, after := changePage(t, l.ws, "changed by the acceptance test")
	p := testbed.StartProbe([]string{l.url}, probeTimeout)
	r := mustUp(t, l.stack)
	seen := p.Stop()
	r.expectSteps(t, map[string]string{
		pulumimock.TypeImage:         "update",                  // one build
		pulumimock.TypeRegistryImage: "replace",                 // one push
		pulumimock.TypeContainer:     "replace",                 // nginx; the port holder stays
		pulumimock.TypeCommand:       "replace,replace,replace", // the push check, the new build proven in a throwaway container, then the site
	})
	expectNoFailedRequest(t, seen, "page change")
	if seen.Requests < 10 {
		t.Errorf("the probe made only %d requests: it did not watch the change", seen.Requests)
	}
	expectPage(t, l.url, after, "after the page change")
}

func (l *stackLife) passwordStoredEncrypted(t *testing.T) {
	// What the backend writes: secrets as ciphertext (stack.Export would decrypt them).
	resources := stateResources(t, l.stack)
	i := slices.IndexFunc(resources, func(r apitype.ResourceV3) bool { return string(r.Type) == pulumimock.TypeRegistryImage })
	if i < 0 {
		t.Fatal("no RegistryImage in the backend's state")
	}
	stored, err := json.Marshal(resources[i].Inputs["authConfig"])
	if err != nil {
		t.Fatal(err)
	}
	// Not blind: where the password would be, the state holds a secret's ciphertext.
	if !strings.Contains(string(stored), `"ciphertext":"v1:`) {
		t.Errorf("the RegistryImage's authConfig is not stored as a secret: %s", stored)
	}
	statePath, err := l.stack.StatePath()
	if err != nil {
		t.Fatal(err)
	}
	stateFile, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	stackFileName := "Pulumi." + l.stack.Name + ".yaml"
	stackFile, err := os.ReadFile(filepath.Join(l.ws.Dir, stackFileName))
	if err != nil {
		t.Fatal(err)
	}
	for place, content := range map[string][]byte{"the backend's stack state": stateFile, stackFileName: stackFile} {
		if bytes.Contains(content, []byte(l.password)) {
			t.Errorf("the registry password is in plain text in %s", place)
		}
	}
	l.expectPasswordConfigEncrypted(t, stackFileName, stackFile)
}

// expectPasswordConfigEncrypted fails unless the stack file holds registryPassword as a
// ciphertext that decrypts to the password.
func (l *stackLife) expectPasswordConfigEncrypted(t *testing.T, stackFileName string, stackFile []byte) {
	t.Helper()
	var stackConfig struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(stackFile, &stackConfig); err != nil {
		t.Fatal(err)
	}
	passwordKey := project + ":registryPassword"
	secure, _ := stackConfig.Config[passwordKey].(map[string]any)
	if ciphertext, _ := secure["secure"].(string); !strings.HasPrefix(ciphertext, "v1:") {
		t.Errorf("%s holds registryPassword as %v, want a secure: ciphertext", stackFileName, stackConfig.Config[passwordKey])
	}
	// …and that ciphertext is the password's.
	if v, err := l.stack.GetConfig(l.ctx, "registryPassword"); err != nil || v.Value != l.password || !v.Secret {
		t.Errorf("registryPassword does not decrypt to the password (secret %v, err %v)", v.Secret, err)
	}
}

func (l *stackLife) hostPortChanged(t *testing.T) {
	oldPort := l.port
	newPort, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l.setConfig(t, "hostPort", auto.ConfigValue{Value: fmt.Sprint(newPort)})
	r := mustUp(t, l.stack)
	r.expectSteps(t, map[string]string{pulumimock.TypeContainer: "replace,replace", pulumimock.TypeCommand: "replace"}) // the port holder, then nginx in its new network
	l.moveTo(newPort)
	if r.out("url") != l.url {
		t.Errorf("url output %q, want %q", r.out("url"), l.url)
	}
	if !strings.Contains(r.out("smokeCheck"), l.url) {
		t.Errorf("the smoke check did not run against %s: %q", l.url, r.out("smokeCheck"))
	}
	l.expectSite(t, "on the new port")
	if err := portFree(oldPort); err != nil {
		t.Errorf("the old port %d is still taken: %v", oldPort, err)
	}
}

func (l *stackLife) imageTagChanged(t *testing.T) {
	oldTag := l.tag
	l.tag = "v2"
	l.setConfig(t, "imageTag", auto.ConfigValue{Value: l.tag})
	r := mustUp(t, l.stack)
	// Same build, so the same container keeps running; the new tag is asked for first.
	r.expectSteps(t, map[string]string{pulumimock.TypeImage: "update", pulumimock.TypeRegistryImage: "replace", pulumimock.TypeCommand: "update"})
	l.expectPushed(t, r)
	if _, err := l.reg.Digest(l.ctx, acceptanceRepository, oldTag); err != nil {
		t.Errorf("the old tag %s is gone from the registry: %v", oldTag, err)
	}
	l.expectSite(t, "with the new tag")
}

func (l *stackLife) pushOffAndOn(t *testing.T) {
	l.setConfig(t, "push", auto.ConfigValue{Value: "false"})
	r := mustUp(t, l.stack)
	r.expectSteps(t, map[string]string{pulumimock.TypeImage: "update", pulumimock.TypeRegistryImage: "delete", pulumimock.TypeCommand: "delete"}) // and the push check
	if testbed.HasType(stateResources(t, l.stack), pulumimock.TypeRegistryImage) {
		t.Error("push false still has a RegistryImage")
	}
	if _, ok := r.up.Outputs["repoUrl"]; ok {
		t.Errorf("push false still exports repoUrl %q", r.out("repoUrl"))
	}
	l.expectSite(t, "with push false")

	l.setConfig(t, "push", auto.ConfigValue{Value: "true"})
	r = mustUp(t, l.stack)
	r.expectSteps(t, map[string]string{pulumimock.TypeImage: "update", pulumimock.TypeRegistryImage: "create", pulumimock.TypeCommand: "create"}) // and the push check
	l.expectPushed(t, r)
	l.expectSite(t, "with push true again")
}

// failedPageChange changes the page while the push cannot succeed: the up must fail at the
// push check, before anything is built or touched. It returns that up and the page from
// before, which must still be served.
func (l *stackLife) failedPageChange(t *testing.T, line, why string) (r run, before []byte) {
	t.Helper()
	before, _ = changePage(t, l.ws, line)
	r = mustFail(t, l.stack, why)
	r.expectSteps(t, map[string]string{})
	return r, before
}

// pushAndRoll: once the push can succeed again, the next up builds the changed page,
// proves, pushes and rolls it out.
func (l *stackLife) pushAndRoll(t *testing.T, when string) {
	t.Helper()
	mustUp(t, l.stack).expectSteps(t, map[string]string{pulumimock.TypeImage: "update", pulumimock.TypeRegistryImage: "replace",
		pulumimock.TypeContainer: "replace", pulumimock.TypeCommand: "replace,replace,replace"})
	l.expectSite(t, when)
}

func (l *stackLife) failedPushKeepsOldPage(t *testing.T) {
	wrong := "wrong-" + randomHex(t, 12)
	l.setConfig(t, "registryPassword", auto.ConfigValue{Value: wrong, Secret: true})
	r, before := l.failedPageChange(t, "changed while the password is wrong", "with a wrong registry password")
	if !regexp.MustCompile(`(?i)unauthorized|authentication required`).MatchString(r.allOutput()) ||
		!strings.Contains(r.allOutput(), "config registryPassword: "+l.reg.Addr+" refused the login") {
		t.Errorf("the failed up does not name registryPassword and the authentication problem:\n%s", r.allOutput())
	}
	for _, secret := range []string{wrong, l.password} {
		if strings.Contains(r.allOutput(), secret) {
			t.Error("a registry password appears in the output of up")
		}
	}
	expectPage(t, l.url, before, "after the failed push")

	l.setConfig(t, "registryPassword", auto.ConfigValue{Value: l.password, Secret: true})
	l.pushAndRoll(t, "after the password was fixed")
}

func (l *stackLife) registryDown(t *testing.T) {
	l.reg.Kill()
	r, before := l.failedPageChange(t, "changed while the registry is down", "with the registry down")
	if !strings.Contains(r.allOutput(), "config registryServer: cannot reach the registry "+l.reg.Addr) || !strings.Contains(r.allOutput(), "connection refused") {
		t.Errorf("the failed up does not say the registry at %s refused the connection:\n%s", l.reg.Addr, r.allOutput())
	}
	expectPage(t, l.url, before, "while the registry is down")

	if err := l.reg.Start(); err != nil {
		t.Fatal(err)
	}
	l.pushAndRoll(t, "with the registry back")
	l.noOpUp(t)
}

func (l *stackLife) containerRemoved(t *testing.T) {
	l.engine.RemoveContainer(l.containerName(t))
	mustUp(t, l.stack, optup.Refresh()).expectSteps(t, map[string]string{pulumimock.TypeContainer: "create", pulumimock.TypeCommand: "replace"})
	l.expectSite(t, "after up --refresh")
}

func (l *stackLife) nginxCrashRestarts(t *testing.T) {
	name := l.containerName(t)
	before, err := l.engine.ContainerInspect(l.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	nginx, err := os.FindProcess(before.State.Pid) // the nginx master, seen from the host
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := nginx.Kill(); err != nil {
		t.Fatalf("killing nginx (host pid %d): %v", before.State.Pid, err)
	}
	for {
		now, err := l.engine.ContainerInspect(l.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if now.RestartCount > before.RestartCount && now.State.Running {
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("the engine did not restart the container in 30 s: %+v", now.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := testbed.WaitServed(l.url, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("nginx killed: the page was served again %s later", time.Since(killed).Round(time.Millisecond))
	l.expectSite(t, "after the restart")
}

func (l *stackLife) hostPortTaken(t *testing.T) {
	busyPort, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", fmt.Sprintf(":%d", busyPort))
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	l.setConfig(t, "hostPort", auto.ConfigValue{Value: fmt.Sprint(busyPort)})
	r := mustFail(t, l.stack, fmt.Sprintf("onto port %d, which another program holds,", busyPort))
	if !strings.Contains(r.allOutput(), fmt.Sprint(busyPort)) {
		t.Errorf("the failed up does not name port %d:\n%s", busyPort, r.allOutput())
	}
	// deleteBeforeReplace: the old container was removed before the new one failed to bind.
	if _, err := servedPage(l.url); err != nil {
		t.Logf("while the new port is taken the site is down (the old container is gone): %v", err)
	}
	squatter.Close()
	mustUp(t, l.stack).expectSteps(t, map[string]string{pulumimock.TypeContainer: "replace,replace", pulumimock.TypeCommand: "replace"})
	l.moveTo(busyPort)
	l.expectSite(t, "once the port was free")
}

func (l *stackLife) platformSetExplicitly(t *testing.T) {
	server, err := l.engine.ServerVersion(l.ctx)
	if err != nil {
		t.Fatal(err)
	}
	platform := server.Os + "/" + server.Arch
	l.setConfig(t, "platform", auto.ConfigValue{Value: platform})
	r := mustUp(t, l.stack)
	// Without platform the program builds for the engine's: naming it changes nothing.
	r.expectSteps(t, map[string]string{})
	inspect, err := l.engine.ImageInspect(l.ctx, r.out("imageId"))
	if err != nil {
		t.Fatal(err)
	}
	if got := inspect.Os + "/" + inspect.Architecture; got != platform {
		t.Errorf("image built for %s, want %s", got, platform)
	}
	l.expectSite(t, "with the platform named")
	l.removeConfig(t, "platform")
	mustUp(t, l.stack).expectSteps(t, map[string]string{})
	l.expectSite(t, "back to the engine's platform by default")
}

// providerPlatformWarning is what docker 4.11.2 prints for a build given no platform.
const providerPlatformWarning = "consider explicitly setting the `platform` field"

func (l *stackLife) remoteEngine(t *testing.T) {
	// The engine's API on a TCP address of its own, as a remote engine's would be.
	engine, err := client.ParseHostURL(l.engine.DaemonHost())
	if err != nil {
		t.Fatal(err)
	}
	forward, err := testbed.Forward("127.0.0.2:0", engine.Scheme, engine.Host+engine.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer forward.Close()
	remoteHost, _, _ := net.SplitHostPort(forward.Addr)
	ws := l.stack.Workspace()
	// Back to the engine the workspace was set up with, also when the step fails.
	defer ws.SetEnvVar("DOCKER_HOST", l.ws.Env["DOCKER_HOST"])
	ws.SetEnvVar("DOCKER_HOST", "tcp://"+forward.Addr)

	remoteURL := fmt.Sprintf("http://%s:%d/", remoteHost, l.port)
	r := mustUp(t, l.stack)
	r.expectSteps(t, map[string]string{pulumimock.TypeCommand: "update,update"}) // the same container; the preflight and the smoke check at the engine's address
	if r.out("url") != remoteURL || !strings.Contains(r.out("smokeCheck"), remoteURL) {
		t.Errorf("url %q and smoke check %q, want both at the engine's host %s", r.out("url"), r.out("smokeCheck"), remoteURL)
	}
	expectSite(t, remoteURL, l.appFolder, "through the remote engine")

	// hostIp: the port on that one address only.
	l.setConfig(t, "hostIp", auto.ConfigValue{Value: remoteHost})
	r = mustUp(t, l.stack)
	r.expectSteps(t, map[string]string{pulumimock.TypeContainer: "replace,replace", pulumimock.TypeCommand: "update,replace"}) // the preflight publishes on hostIp too
	expectSite(t, remoteURL, l.appFolder, "with hostIp "+remoteHost)
	if _, err := servedPage(fmt.Sprintf("http://127.0.0.1:%d/", l.port)); err == nil {
		t.Errorf("hostIp %s, yet the page is served on 127.0.0.1 too", remoteHost)
	}

	l.removeConfig(t, "hostIp")
	ws.SetEnvVar("DOCKER_HOST", l.ws.Env["DOCKER_HOST"])
	mustUp(t, l.stack)
	l.expectSite(t, "back on the local engine")
}

func (l *stackLife) twoStacks(t *testing.T) {
	otherPort, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	otherConfig := maps.Clone(l.config)
	otherConfig["hostPort"] = auto.ConfigValue{Value: fmt.Sprint(otherPort)}
	other := newStack(t, l.ws, l.stack.Name+"b", otherConfig, l.engine)
	mustUp(t, other)
	for _, u := range []string{l.url, localURL(otherPort)} {
		expectSite(t, u, l.appFolder, "both stacks up")
	}
	if _, err := other.Destroy(l.ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
		t.Fatal(err)
	}
	expectNoContainerOf(t, l.engine, other.Name)
	l.expectSite(t, "after the other stack's destroy")
}

func (l *stackLife) destroy(t *testing.T) {
	if _, err := l.stack.Destroy(l.ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
		t.Fatal(err)
	}
	expectNoContainerOf(t, l.engine, l.stack.Name)
	if err := portFree(l.port); err != nil {
		t.Errorf("host port %d still taken after destroy: %v", l.port, err)
	}
	if _, err := l.reg.Digest(l.ctx, acceptanceRepository, l.tag); err != nil {
		t.Errorf("pushed tag gone after destroy (keepRemotely): %v", err)
	}
}

// TestAcceptanceBadConfig: a preview with bad config fails with every problem, one per
// line, as the real CLI prints it, and creates nothing; a password set without --secret is
// told apart by the CLI's own flag. (The rules themselves are config.Load's table tests.)
func TestAcceptanceBadConfig(t *testing.T) {
	offMachineEngine.join(t)
	requireToolchain(t)
	ctx := context.Background()
	// Bad config stops the program before any resource: no engine is needed.
	w := newWorkspace(t, "")
	for name, tt := range map[string]struct {
		config auto.ConfigMap
		want   []string // the problems, in the order the program reports them
	}{
		"password not secret": {
			auto.ConfigMap{"registryUsername": {Value: "u"}, "registryPassword": {Value: "x"}},
			[]string{"config registryPassword: is stored in plain text"},
		},
		"three problems": {
			auto.ConfigMap{"push": {Value: "false"}, "hostPort": {Value: "70000"}, "repository": {Value: "Bad/Name"}, "imageTag": {Value: "-v1"}},
			[]string{"config repository: \"Bad/Name\" has uppercase letters", "config imageTag: \"-v1\" is not a valid tag", "config hostPort: \"70000\" is not a port number"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			stack := newStack(t, w, "bad"+randomHex(t, 4), tt.config, nil)
			var output bytes.Buffer
			out := io.MultiWriter(&output, testWriter{t})
			_, err := stack.Preview(ctx, optpreview.ProgressStreams(out), optpreview.ErrorProgressStreams(out))
			if err == nil {
				t.Fatal("preview with bad config succeeded")
			}
			text := output.String()
			count := "1 error occurred:"
			if len(tt.want) > 1 {
				count = fmt.Sprintf("%d errors occurred:", len(tt.want))
			}
			if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(count) + `$`).MatchString(text) {
				t.Errorf("the CLI does not say %q on a line of its own:\n%s", count, text)
			}
			for _, problem := range tt.want {
				// Each problem on its own bulleted line.
				if !regexp.MustCompile(`(?m)^\s*\* ` + regexp.QuoteMeta(problem) + `.*; fix: .*$`).MatchString(text) {
					t.Errorf("the CLI does not show %q on a bulleted line of its own with its fix:\n%s", problem, text)
				}
			}
			if testbed.HasType(stateResources(t, stack), pulumimock.TypeImage) {
				t.Fatal("bad config created docker resources")
			}
		})
	}
}

// testWriter sends Pulumi's progress output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
