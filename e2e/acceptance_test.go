package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/example/custom-nginx/internal/testsupport"
)

// Plugin versions the program's go.mod pins; the acceptance run needs exactly these.
var requiredPlugins = []struct{ kind, name, version string }{
	{"resource", "docker", "4.11.2"},
	{"resource", "command", "1.2.1"},
}

// acceptanceMissing lists what this machine lacks for a real `pulumi up`.
func acceptanceMissing() []string {
	var missing []string
	cli, err := exec.LookPath("pulumi")
	if err != nil {
		return []string{"the Pulumi CLI (pulumi on PATH)", "the Go language host (pulumi-language-go)",
			"the docker provider plugin v4.11.2", "the command provider plugin v1.2.1"}
	}
	if _, err := exec.LookPath("pulumi-language-go"); err != nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(cli), "pulumi-language-go")); err != nil {
			missing = append(missing, "the Go language host (pulumi-language-go, next to pulumi or on PATH)")
		}
	}
	home := os.Getenv("PULUMI_HOME")
	if home == "" {
		userHome, _ := os.UserHomeDir()
		home = filepath.Join(userHome, ".pulumi")
	}
	for _, p := range requiredPlugins {
		binary := fmt.Sprintf("pulumi-%s-%s", p.kind, p.name)
		installed := filepath.Join(home, "plugins", fmt.Sprintf("%s-%s-v%s", p.kind, p.name, p.version), binary)
		if _, err := os.Stat(installed); err == nil {
			continue
		}
		if _, err := exec.LookPath(binary); err == nil {
			continue
		}
		missing = append(missing, fmt.Sprintf("the %s provider plugin v%s (pulumi plugin install %s %s v%s)", p.name, p.version, p.kind, p.name, p.version))
	}
	return missing
}

// projectCopy copies the Pulumi project into a temp dir, so the test can edit the page
// and the stack file without touching the repository.
func projectCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"Pulumi.yaml", "go.mod", "go.sum", "main.go", "internal", "app"} {
		src := filepath.Join("..", name)
		info, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if info.IsDir() {
			err = os.CopyFS(filepath.Join(dir, name), os.DirFS(src))
		} else {
			var b []byte
			if b, err = os.ReadFile(src); err == nil {
				err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// opsByType collects the engine's step operations per resource type: one per changed
// resource ("update", "replace", …), leaving out the halves of a replacement and "same".
type opsByType struct {
	mu  sync.Mutex
	ops map[string][]string
}

func (o *opsByType) stream() chan<- events.EngineEvent {
	ch := make(chan events.EngineEvent)
	o.ops = map[string][]string{}
	go func() {
		for e := range ch {
			if e.ResourcePreEvent != nil {
				md := e.ResourcePreEvent.Metadata
				switch md.Op {
				case apitype.OpSame, apitype.OpCreateReplacement, apitype.OpDeleteReplaced,
					apitype.OpDiscardReplaced, apitype.OpRemovePendingReplace:
					continue
				}
				o.mu.Lock()
				o.ops[md.Type] = append(o.ops[md.Type], string(md.Op))
				o.mu.Unlock()
			}
		}
	}()
	return ch
}

func (o *opsByType) get(typ string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.ops[typ], ",")
}

func TestAcceptance(t *testing.T) {
	if missing := acceptanceMissing(); len(missing) > 0 {
		t.Skipf("skipped: a real `pulumi up` needs %s; this machine lacks: %s", "the CLI, the Go language host and the docker and command plugins", strings.Join(missing, "; "))
	}
	e := testsupport.RequireEngine(t)
	ctx := context.Background()
	base, err := testsupport.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}

	password := "acc-" + randomHex(t, 16)
	reg, err := testsupport.StartRegistry("acceptance", password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	hostPort, err := testsupport.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	dir := projectCopy(t)
	backend := t.TempDir()
	env := map[string]string{
		"PULUMI_BACKEND_URL":       "file://" + backend,
		"PULUMI_CONFIG_PASSPHRASE": "acceptance-" + randomHex(t, 8),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
	}
	stackName := "acc" + randomHex(t, 4)
	stack, err := auto.UpsertStackLocalSource(ctx, stackName, dir, auto.EnvVars(env), auto.SecretsProvider("passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	const repository, imageTag = "acceptance/custom-nginx", "v1"
	err = stack.SetAllConfig(ctx, auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: password, Secret: true},
		"repository":       {Value: repository},
		"imageTag":         {Value: imageTag},
		"hostPort":         {Value: fmt.Sprint(hostPort)},
		"baseImage":        {Value: base},
	})
	if err != nil {
		t.Fatal(err)
	}
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			_, _ = stack.Destroy(ctx)
		}
		_ = stack.Workspace().RemoveStack(ctx, stackName)
	})

	// 2. up: outputs, the page, the registry's digest.
	up, err := stack.Up(ctx, optup.ProgressStreams(testWriter{t}))
	if err != nil {
		t.Fatalf("pulumi up: %v", err)
	}
	out := func(name string) string { return fmt.Sprint(up.Outputs[name].Value) }
	url := fmt.Sprintf("http://localhost:%d/", hostPort)
	if out("url") != url || out("repoUrl") != reg.Addr+"/"+repository || out("containerName") != "custom-nginx-"+stackName {
		t.Errorf("outputs url %q repoUrl %q containerName %q", out("url"), out("repoUrl"), out("containerName"))
	}
	digest, err := reg.Digest(ctx, repository, imageTag)
	if err != nil {
		t.Fatal(err)
	}
	if want := reg.Addr + "/" + repository + "@" + digest; out("imageRef") != want {
		t.Errorf("imageRef %q, registry has %q", out("imageRef"), want)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(out("imageId")) {
		t.Errorf("imageId %q", out("imageId"))
	}
	if err := testsupport.CheckSite(url, filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}

	// 3. A second up changes nothing.
	again, err := stack.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for op, n := range *again.Summary.ResourceChanges {
		if op != "same" && n > 0 {
			t.Errorf("no-op up: %d %s, want only same: %v", n, op, *again.Summary.ResourceChanges)
		}
	}

	// 4. A page change: one build, one push, one container replacement, the new page served.
	page := filepath.Join(dir, "app", "html", "index.html")
	old, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(old), "</main>", "<p>changed by the acceptance test</p>\n</main>", 1)
	if err := os.WriteFile(page, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	var ops opsByType
	if _, err := stack.Up(ctx, optup.EventStreams(ops.stream())); err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]string{
		"docker:index/image:Image":                 "update",  // one build
		"docker:index/registryImage:RegistryImage": "replace", // one push
		"docker:index/container:Container":         "replace",
		"command:local:Command":                    "replace", // the new page proven
	} {
		if got := ops.get(typ); got != want {
			t.Errorf("page change: %s steps %q, want %q", typ, got, want)
		}
	}
	if err := testsupport.CheckSite(url, filepath.Join(dir, "app")); err != nil {
		t.Fatalf("after the page change: %v", err)
	}

	// 5. The password is only ever stored encrypted.
	exported, err := stack.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stackFile, err := os.ReadFile(filepath.Join(dir, "Pulumi."+stackName+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for place, content := range map[string][]byte{"stack export": exported.Deployment, "Pulumi." + stackName + ".yaml": stackFile} {
		if strings.Contains(string(content), password) {
			t.Errorf("the registry password is in plain text in %s", place)
		}
	}

	// 6. destroy: container gone, port free, the pushed tag kept.
	if _, err := stack.Destroy(ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if _, err := e.ContainerInspect(ctx, "custom-nginx-"+stackName); err == nil {
		t.Error("container still exists after destroy")
	}
	if l, err := net.Listen("tcp", fmt.Sprintf(":%d", hostPort)); err != nil {
		t.Errorf("host port %d still taken after destroy: %v", hostPort, err)
	} else {
		l.Close()
	}
	if _, err := reg.Digest(ctx, repository, imageTag); err != nil {
		t.Errorf("pushed tag gone after destroy (keepRemotely): %v", err)
	}
}

// TestAcceptanceBadConfig: a preview with bad config fails with the validation message
// and creates nothing.
func TestAcceptanceBadConfig(t *testing.T) {
	if missing := acceptanceMissing(); len(missing) > 0 {
		t.Skipf("skipped: a real `pulumi preview` needs the CLI, the Go language host and the plugins; this machine lacks: %s", strings.Join(missing, "; "))
	}
	ctx := context.Background()
	dir := projectCopy(t)
	env := auto.EnvVars(map[string]string{
		"PULUMI_BACKEND_URL":       "file://" + t.TempDir(),
		"PULUMI_CONFIG_PASSPHRASE": "bad-config",
	})
	for name, tt := range map[string]struct {
		config auto.ConfigMap
		want   string
	}{
		"missing user with push on": {auto.ConfigMap{"registryPassword": {Value: "x", Secret: true}}, "config registryUsername: is required"},
		"password not secret":       {auto.ConfigMap{"registryUsername": {Value: "u"}, "registryPassword": {Value: "x"}}, "config registryPassword: is stored in plain text"},
		"port out of range":         {auto.ConfigMap{"push": {Value: "false"}, "hostPort": {Value: "70000"}}, "config hostPort"},
		"bad repository":            {auto.ConfigMap{"push": {Value: "false"}, "repository": {Value: "Bad/Name"}}, "config repository"},
	} {
		t.Run(name, func(t *testing.T) {
			stackName := "bad" + randomHex(t, 4)
			stack, err := auto.UpsertStackLocalSource(ctx, stackName, dir, env, auto.SecretsProvider("passphrase"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = stack.Workspace().RemoveStack(ctx, stackName) })
			if err := stack.SetAllConfig(ctx, tt.config); err != nil {
				t.Fatal(err)
			}
			_, err = stack.Preview(ctx, optpreview.ProgressStreams(testWriter{t}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("preview error %v, want %q", err, tt.want)
			}
			exported, err := stack.Export(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(exported.Deployment), "docker:") {
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
