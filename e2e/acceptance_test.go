package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/docker/docker/client"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"golang.org/x/mod/modfile"
	"gopkg.in/yaml.v3"

	"github.com/example/custom-nginx/internal/testsupport"
)

// Resource types of the stack, as the engine names them.
const (
	typeImage         = "docker:index/image:Image"
	typeRegistryImage = "docker:index/registryImage:RegistryImage"
	typeContainer     = "docker:index/container:Container"
	typeCommand       = "command:local:Command"
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
		testsupport.Unavailable(t, "no Pulumi CLI on PATH (a real `pulumi up` needs it, the Go language host and the docker and command plugins)", fix)
	}
	if _, err := exec.LookPath("pulumi-language-go"); err != nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(cli), "pulumi-language-go")); err != nil {
			testsupport.Unavailable(t, "no Go language host (pulumi-language-go next to pulumi or on PATH)", fix)
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
			testsupport.Unavailable(t, fmt.Sprintf("no %s provider plugin v%s (pulumi plugin install resource %s %s)", name, version, name, version), fix)
		}
	}
}

// workspace is a project copy with a file backend of its own, as a user without a Pulumi
// account has it.
type workspace struct {
	dir, backend string
	env          map[string]string
}

func newWorkspace(t *testing.T) workspace {
	t.Helper()
	w := workspace{dir: t.TempDir(), backend: t.TempDir()}
	if err := testsupport.CopyProject("..", w.dir); err != nil {
		t.Fatal(err)
	}
	w.env = map[string]string{
		"PULUMI_BACKEND_URL":       "file://" + w.backend,
		"PULUMI_CONFIG_PASSPHRASE": "acceptance-" + randomHex(t, 8),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
	}
	return w
}

// stack creates a stack of the workspace with cfg and removes it when the test ends,
// destroying whatever is still deployed.
func (w workspace) stack(t *testing.T, name string, cfg auto.ConfigMap) auto.Stack {
	t.Helper()
	ctx := context.Background()
	s, err := auto.UpsertStackLocalSource(ctx, name, w.dir, auto.EnvVars(w.env), auto.SecretsProvider("passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = s.Destroy(ctx)
		_ = s.Workspace().RemoveStack(ctx, name)
	})
	if err := s.SetAllConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// page is the custom page of the workspace.
func (w workspace) page() string { return filepath.Join(w.dir, "app", "html", "index.html") }

// changePage adds a line to the custom page and returns the page before and after.
func (w workspace) changePage(t *testing.T, line string) (before, after []byte) {
	t.Helper()
	before, err := os.ReadFile(w.page())
	if err != nil {
		t.Fatal(err)
	}
	after = []byte(strings.Replace(string(before), "</main>", "<p>"+line+"</p>\n</main>", 1))
	if err := os.WriteFile(w.page(), after, 0o644); err != nil {
		t.Fatal(err)
	}
	return before, after
}

// run is one `pulumi up` (or destroy) through the Automation API: its result, everything
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

func up(t *testing.T, s auto.Stack, opts ...optup.Option) run {
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
func mustUp(t *testing.T, s auto.Stack, opts ...optup.Option) run {
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
			if md.Type == "pulumi:pulumi:Stack" || md.Type == "customnginx:index:Site" || strings.HasPrefix(md.Type, "pulumi:providers:") {
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

// expectPage fails unless url serves exactly page.
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

// portFree reports whether nothing listens on the host port any more.
func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	return l.Close()
}

func localURL(port int) string { return fmt.Sprintf("http://localhost:%d/", port) }

// statePath is where the file backend keeps the stack's state.
func (w workspace) statePath(stackName string) string {
	return filepath.Join(w.backend, ".pulumi", "stacks", project, stackName+".json")
}

// stateResources reads what the file backend stores for the stack: the resources of its
// checkpoint, secrets as the backend keeps them.
func (w workspace) stateResources(t *testing.T, stackName string) []apitype.ResourceV3 {
	t.Helper()
	raw, err := os.ReadFile(w.statePath(stackName))
	if err != nil {
		t.Fatal(err)
	}
	var checkpoint apitype.VersionedCheckpoint
	if err := json.Unmarshal(raw, &checkpoint); err != nil {
		t.Fatal(err)
	}
	var cp apitype.CheckpointV3
	if err := json.Unmarshal(checkpoint.Checkpoint, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Latest == nil {
		return nil
	}
	return cp.Latest.Resources
}

func hasType(resources []apitype.ResourceV3, typ string) bool {
	return slices.ContainsFunc(resources, func(r apitype.ResourceV3) bool { return string(r.Type) == typ })
}

// acceptanceSetup gives an acceptance test what every `pulumi up` here needs: the toolchain
// (or a skip naming what is missing), the engine, the base image to build on, and a
// registry of its own with a random password.
func acceptanceSetup(t *testing.T) (*testsupport.Engine, string, *testsupport.Registry) {
	t.Helper()
	requireToolchain(t)
	e := testsupport.RequireEngine(t)
	base, err := testsupport.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := testsupport.StartRegistry("acceptance", "acc-"+randomHex(t, 16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	return e, base, reg
}

// TestAcceptance runs one stack's life through the real CLI, engine and registry: the
// first deployment, re-runs, config changes and the faults a deployment meets, the page
// checked after each; then a second stack beside it, and destroy.
func TestAcceptance(t *testing.T) {
	started := time.Now()
	e, base, reg := acceptanceSetup(t)
	password := reg.Password
	ctx := context.Background()
	hostPort, err := testsupport.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	w := newWorkspace(t)
	appFolder := filepath.Join(w.dir, "app")
	stackName := "acc" + randomHex(t, 4)
	containerName := runningName(stackName)
	const repository = "acceptance/custom-nginx"
	imageTag := "v1"
	config := auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: password, Secret: true},
		"repository":       {Value: repository},
		"imageTag":         {Value: imageTag},
		"hostPort":         {Value: fmt.Sprint(hostPort)},
		"baseImage":        {Value: base},
	}
	stack := w.stack(t, stackName, config)
	setConfig := func(t *testing.T, key string, value auto.ConfigValue) {
		t.Helper()
		if err := stack.SetConfig(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	url := localURL(hostPort)
	// Each step builds on the state the one before left: stop at the first that fails.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("first up", func(t *testing.T) {
		r := mustUp(t, stack)
		r.expectSteps(t, map[string]string{typeImage: "create", typeRegistryImage: "create", typeContainer: "create", typeCommand: "create"})
		if r.out("url") != url || r.out("repoUrl") != reg.Addr+"/"+repository || r.out("containerName") != containerName {
			t.Errorf("outputs url %q repoUrl %q containerName %q", r.out("url"), r.out("repoUrl"), r.out("containerName"))
		}
		digest, err := reg.Digest(ctx, repository, imageTag)
		if err != nil {
			t.Fatal(err)
		}
		if want := reg.Addr + "/" + repository + "@" + digest; r.out("imageRef") != want {
			t.Errorf("imageRef %q, registry has %q", r.out("imageRef"), want)
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(r.out("imageId")) {
			t.Errorf("imageId %q", r.out("imageId"))
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
		// The page as a person sees it, from the container the stack runs.
		testsupport.CheckInBrowser(t, url, appFolder, screenshotDir(t, "acceptance"))
	})

	noOp := func(t *testing.T) {
		t.Helper()
		r := mustUp(t, stack, optup.ExpectNoChanges())
		for op, n := range *r.up.Summary.ResourceChanges {
			if op != "same" && n > 0 {
				t.Errorf("no-op up: %d %s, want only same: %v", n, op, *r.up.Summary.ResourceChanges)
			}
		}
	}
	step("no-op up changes nothing", noOp)

	pageChangeSteps := map[string]string{
		typeImage:         "update",  // one build
		typeRegistryImage: "replace", // one push
		typeContainer:     "replace",
		typeCommand:       "replace", // the new page proven
	}
	step("page change", func(t *testing.T) {
		w.changePage(t, "changed by the acceptance test")
		mustUp(t, stack).expectSteps(t, pageChangeSteps)
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
	})

	step("the password is stored only encrypted", func(t *testing.T) {
		// What the backend writes: secrets as ciphertext (stack.Export would decrypt them).
		resources := w.stateResources(t, stackName)
		i := slices.IndexFunc(resources, func(r apitype.ResourceV3) bool { return string(r.Type) == typeRegistryImage })
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
		stateFile, err := os.ReadFile(w.statePath(stackName))
		if err != nil {
			t.Fatal(err)
		}
		stackFileName := "Pulumi." + stackName + ".yaml"
		stackFile, err := os.ReadFile(filepath.Join(w.dir, stackFileName))
		if err != nil {
			t.Fatal(err)
		}
		for place, content := range map[string][]byte{"the backend's stack state": stateFile, stackFileName: stackFile} {
			if bytes.Contains(content, []byte(password)) {
				t.Errorf("the registry password is in plain text in %s", place)
			}
		}
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
		if v, err := stack.GetConfig(ctx, "registryPassword"); err != nil || v.Value != password || !v.Secret {
			t.Errorf("registryPassword does not decrypt to the password (secret %v, err %v)", v.Secret, err)
		}
	})

	step("hostPort changed", func(t *testing.T) {
		oldPort := hostPort
		newPort, err := testsupport.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		setConfig(t, "hostPort", auto.ConfigValue{Value: fmt.Sprint(newPort)})
		r := mustUp(t, stack)
		r.expectSteps(t, map[string]string{typeContainer: "replace", typeCommand: "replace"})
		hostPort, url = newPort, localURL(newPort)
		if r.out("url") != url {
			t.Errorf("url output %q, want %q", r.out("url"), url)
		}
		if !strings.Contains(r.out("smokeCheck"), url) {
			t.Errorf("the smoke check did not run against %s: %q", url, r.out("smokeCheck"))
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
		if err := portFree(oldPort); err != nil {
			t.Errorf("the old port %d is still taken: %v", oldPort, err)
		}
	})

	step("imageTag changed", func(t *testing.T) {
		oldTag := imageTag
		imageTag = "v2"
		setConfig(t, "imageTag", auto.ConfigValue{Value: imageTag})
		r := mustUp(t, stack)
		// Same build, so the same container keeps running.
		r.expectSteps(t, map[string]string{typeImage: "update", typeRegistryImage: "replace"})
		digest, err := reg.Digest(ctx, repository, imageTag)
		if err != nil {
			t.Fatalf("the new tag is not in the registry: %v", err)
		}
		if want := reg.Addr + "/" + repository + "@" + digest; r.out("imageRef") != want {
			t.Errorf("imageRef %q, registry has %q", r.out("imageRef"), want)
		}
		if _, err := reg.Digest(ctx, repository, oldTag); err != nil {
			t.Errorf("the old tag %s is gone from the registry: %v", oldTag, err)
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
	})

	step("push off and on again", func(t *testing.T) {
		setConfig(t, "push", auto.ConfigValue{Value: "false"})
		r := mustUp(t, stack)
		r.expectSteps(t, map[string]string{typeImage: "update", typeRegistryImage: "delete"})
		if hasType(w.stateResources(t, stackName), typeRegistryImage) {
			t.Error("push false still has a RegistryImage")
		}
		if _, ok := r.up.Outputs["repoUrl"]; ok {
			t.Errorf("push false still exports repoUrl %q", r.out("repoUrl"))
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("with push false: %v", err)
		}

		setConfig(t, "push", auto.ConfigValue{Value: "true"})
		r = mustUp(t, stack)
		r.expectSteps(t, map[string]string{typeImage: "update", typeRegistryImage: "create"})
		digest, err := reg.Digest(ctx, repository, imageTag)
		if err != nil {
			t.Fatal(err)
		}
		if want := reg.Addr + "/" + repository + "@" + digest; r.out("imageRef") != want {
			t.Errorf("imageRef %q, registry has %q", r.out("imageRef"), want)
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
	})

	// After a failed push the next up finds the new build in place and pushes and rolls it.
	pushAndRollSteps := map[string]string{typeRegistryImage: "replace", typeContainer: "replace", typeCommand: "replace"}
	step("failed push keeps the old page", func(t *testing.T) {
		wrong := "wrong-" + randomHex(t, 12)
		setConfig(t, "registryPassword", auto.ConfigValue{Value: wrong, Secret: true})
		before, _ := w.changePage(t, "changed while the password is wrong")
		r := up(t, stack)
		if r.err == nil {
			t.Fatal("up with a wrong registry password succeeded")
		}
		if !regexp.MustCompile(`(?i)unauthorized|authentication required`).MatchString(r.allOutput()) {
			t.Errorf("the failed up does not name the authentication problem:\n%s", r.allOutput())
		}
		for _, secret := range []string{wrong, password} {
			if strings.Contains(r.allOutput(), secret) {
				t.Error("a registry password appears in the output of up")
			}
		}
		expectPage(t, url, before, "after the failed push")

		setConfig(t, "registryPassword", auto.ConfigValue{Value: password, Secret: true})
		mustUp(t, stack).expectSteps(t, pushAndRollSteps)
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("after the password was fixed: %v", err)
		}
	})

	step("registry down", func(t *testing.T) {
		reg.Kill()
		before, _ := w.changePage(t, "changed while the registry is down")
		r := up(t, stack)
		if r.err == nil {
			t.Fatal("up with the registry down succeeded")
		}
		if !strings.Contains(r.allOutput(), reg.Addr) || !strings.Contains(r.allOutput(), "connection refused") {
			t.Errorf("the failed up does not say the registry at %s refused the connection:\n%s", reg.Addr, r.allOutput())
		}
		expectPage(t, url, before, "while the registry is down")

		if err := reg.Start(); err != nil {
			t.Fatal(err)
		}
		mustUp(t, stack).expectSteps(t, pushAndRollSteps)
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("with the registry back: %v", err)
		}
		noOp(t)
	})

	step("container removed behind Pulumi's back", func(t *testing.T) {
		e.RemoveContainer(containerName)
		mustUp(t, stack, optup.Refresh()).expectSteps(t, map[string]string{typeContainer: "create", typeCommand: "replace"})
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("after up --refresh: %v", err)
		}
	})

	step("nginx crash restarts the container", func(t *testing.T) {
		before, err := e.ContainerInspect(ctx, containerName)
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
			now, err := e.ContainerInspect(ctx, containerName)
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
		if _, err := testsupport.WaitServed(url, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("nginx killed: the page was served again %s later", time.Since(killed).Round(time.Millisecond))
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
	})

	step("host port taken by another program", func(t *testing.T) {
		busyPort, err := testsupport.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		squatter, err := net.Listen("tcp", fmt.Sprintf(":%d", busyPort))
		if err != nil {
			t.Fatal(err)
		}
		defer squatter.Close()
		setConfig(t, "hostPort", auto.ConfigValue{Value: fmt.Sprint(busyPort)})
		r := up(t, stack)
		if r.err == nil {
			t.Fatalf("up onto port %d, which another program holds, succeeded", busyPort)
		}
		if !strings.Contains(r.allOutput(), fmt.Sprint(busyPort)) {
			t.Errorf("the failed up does not name port %d:\n%s", busyPort, r.allOutput())
		}
		// deleteBeforeReplace: the old container was removed before the new one failed to bind.
		if _, err := servedPage(url); err != nil {
			t.Logf("while the new port is taken the site is down (the old container is gone): %v", err)
		}
		squatter.Close()
		mustUp(t, stack).expectSteps(t, map[string]string{typeContainer: "replace", typeCommand: "replace"})
		hostPort, url = busyPort, localURL(busyPort)
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("once the port was free: %v", err)
		}
	})

	step("platform set explicitly", func(t *testing.T) {
		server, err := e.ServerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		platform := server.Os + "/" + server.Arch
		setConfig(t, "platform", auto.ConfigValue{Value: platform})
		r := mustUp(t, stack)
		// Without platform the provider already builds for linux/<arch of the machine running
		// pulumi>, which is this engine's: naming it changes nothing.
		r.expectSteps(t, map[string]string{})
		inspect, err := e.ImageInspect(ctx, r.out("imageId"))
		if err != nil {
			t.Fatal(err)
		}
		if got := inspect.Os + "/" + inspect.Architecture; got != platform {
			t.Errorf("image built for %s, want %s", got, platform)
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatal(err)
		}
		if err := stack.RemoveConfig(ctx, "platform"); err != nil {
			t.Fatal(err)
		}
		mustUp(t, stack)
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("back to the provider's default platform: %v", err)
		}
	})

	step("remote engine through DOCKER_HOST", func(t *testing.T) {
		// The engine's API on a TCP address of its own, as a remote engine's would be.
		engine, err := client.ParseHostURL(e.DaemonHost())
		if err != nil {
			t.Fatal(err)
		}
		forward, err := testsupport.Forward("127.0.0.2:0", engine.Scheme, engine.Host+engine.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer forward.Close()
		remoteHost, _, _ := net.SplitHostPort(forward.Addr)
		ws := stack.Workspace()
		ws.SetEnvVar("DOCKER_HOST", "tcp://"+forward.Addr)
		defer ws.UnsetEnvVar("DOCKER_HOST")

		remoteURL := fmt.Sprintf("http://%s:%d/", remoteHost, hostPort)
		r := mustUp(t, stack)
		r.expectSteps(t, map[string]string{typeCommand: "update"}) // the same container, proven again at its new address
		if r.out("url") != remoteURL || !strings.Contains(r.out("smokeCheck"), remoteURL) {
			t.Errorf("url %q and smoke check %q, want both at the engine's host %s", r.out("url"), r.out("smokeCheck"), remoteURL)
		}
		if err := testsupport.CheckSite(remoteURL, appFolder); err != nil {
			t.Fatal(err)
		}

		// hostIp: the port on that one address only.
		setConfig(t, "hostIp", auto.ConfigValue{Value: remoteHost})
		r = mustUp(t, stack)
		r.expectSteps(t, map[string]string{typeContainer: "replace", typeCommand: "replace"})
		if err := testsupport.CheckSite(remoteURL, appFolder); err != nil {
			t.Fatal(err)
		}
		if _, err := servedPage(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err == nil {
			t.Errorf("hostIp %s, yet the page is served on 127.0.0.1 too", remoteHost)
		}

		if err := stack.RemoveConfig(ctx, "hostIp"); err != nil {
			t.Fatal(err)
		}
		ws.UnsetEnvVar("DOCKER_HOST")
		mustUp(t, stack)
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("back on the local engine: %v", err)
		}
	})

	step("two stacks side by side", func(t *testing.T) {
		otherPort, err := testsupport.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		otherConfig := auto.ConfigMap{}
		for k, v := range config {
			otherConfig[k] = v
		}
		otherConfig["hostPort"] = auto.ConfigValue{Value: fmt.Sprint(otherPort)}
		otherName := stackName + "b"
		other := w.stack(t, otherName, otherConfig)
		mustUp(t, other)
		otherURL := localURL(otherPort)
		for _, u := range []string{url, otherURL} {
			if err := testsupport.CheckSite(u, appFolder); err != nil {
				t.Fatalf("both stacks up: %v", err)
			}
		}
		if _, err := other.Destroy(ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ContainerInspect(ctx, runningName(otherName)); err == nil {
			t.Error("the other stack's container is left after its destroy")
		}
		if err := testsupport.CheckSite(url, appFolder); err != nil {
			t.Fatalf("after the other stack's destroy: %v", err)
		}
	})

	step("destroy", func(t *testing.T) {
		if _, err := stack.Destroy(ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ContainerInspect(ctx, containerName); err == nil {
			t.Error("container still exists after destroy")
		}
		if err := portFree(hostPort); err != nil {
			t.Errorf("host port %d still taken after destroy: %v", hostPort, err)
		}
		if _, err := reg.Digest(ctx, repository, imageTag); err != nil {
			t.Errorf("pushed tag gone after destroy (keepRemotely): %v", err)
		}
	})
	t.Logf("the stack's life took %s", time.Since(started).Round(time.Second))
}

// TestAcceptanceBadConfig: a preview with bad config fails with every problem, one per
// line, as the real CLI prints it, and creates nothing; a password set without --secret is
// told apart by the CLI's own flag. (The rules themselves are config.Load's table tests.)
func TestAcceptanceBadConfig(t *testing.T) {
	requireToolchain(t)
	ctx := context.Background()
	w := newWorkspace(t)
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
			stackName := "bad" + randomHex(t, 4)
			stack := w.stack(t, stackName, tt.config)
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
			if hasType(w.stateResources(t, stackName), typeImage) {
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
