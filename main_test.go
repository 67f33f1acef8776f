package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/rollout"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/smoke"
	"github.com/example/custom-nginx/internal/testsupport"
)

const (
	testProject  = "custom-nginx"
	testStack    = "dev"
	testPassword = "dckr_pat_unit-test-password"
	testImageID  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testDigest   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// registered is one resource the program registered, as the mock monitor saw it.
type registered struct {
	typ                 string
	name                string
	inputs              resource.PropertyMap
	deps                []string
	deleteBeforeReplace bool
}

// recorder is a Pulumi mock that records every resource and answers like the providers.
type recorder struct {
	mu        sync.Mutex
	resources []registered
}

func (r *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := registered{typ: args.TypeToken, name: args.Name, inputs: args.Inputs}
	if rpc := args.RegisterRPC; rpc != nil {
		reg.deps = rpc.GetDependencies()
		reg.deleteBeforeReplace = rpc.GetDeleteBeforeReplace()
	}
	r.resources = append(r.resources, reg)

	state := args.Inputs.Copy()
	switch args.TypeToken {
	case "docker:index/image:Image":
		state["repoDigest"] = resource.NewProperty(testImageID)
	case "docker:index/registryImage:RegistryImage":
		state["sha256Digest"] = resource.NewProperty(testDigest)
	case "command:local:Command":
		state["stdout"] = resource.NewProperty("custom page served")
	}
	return mockID(args.TypeToken, args.Name), state, nil
}

// mockID is the ID the mock gives a resource: its type in it, so a test can tell which
// resource an input refers to.
func mockID(typeToken, name string) string {
	return typeToken[strings.LastIndex(typeToken, ":")+1:] + "/" + name
}

func (r *recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func (r *recorder) byType(t *testing.T, typ string) []registered {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []registered
	for _, res := range r.resources {
		if res.typ == typ {
			out = append(out, res)
		}
	}
	return out
}

func (r *recorder) named(t *testing.T, name string) registered {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range r.resources {
		if res.name == name {
			return res
		}
	}
	t.Fatalf("no resource named %s", name)
	return registered{}
}

func (r *recorder) one(t *testing.T, typ string) registered {
	t.Helper()
	found := r.byType(t, typ)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(found))
	}
	return found[0]
}

// deployment is what one run of the program produced.
type deployment struct {
	rec     *recorder
	outputs map[string]awaited
	err     error
}

type awaited struct {
	value  any
	secret bool
}

// deploy runs the program under mocks with the given project config; secret lists the
// keys set with --secret. Config reaches the program the way the CLI passes it: every key
// Pulumi.yaml declares, its default applied.
func deploy(t *testing.T, values map[string]string, secret ...string) deployment {
	t.Helper()
	project, err := workspace.LoadProject("Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{}
	for k, decl := range project.Config {
		if decl.Default != nil {
			cfg[testProject+":"+k] = fmt.Sprint(decl.Default)
		}
	}
	for k, v := range values {
		cfg[testProject+":"+k] = v
	}
	secretKeys := []string{}
	for _, k := range secret {
		secretKeys = append(secretKeys, testProject+":"+k)
	}
	cfgJSON, _ := json.Marshal(cfg)
	keysJSON, _ := json.Marshal(secretKeys)
	t.Setenv("PULUMI_CONFIG", string(cfgJSON))
	t.Setenv("PULUMI_CONFIG_SECRET_KEYS", string(keysJSON))

	d := deployment{rec: &recorder{}, outputs: map[string]awaited{}}
	d.err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		cfg, s, err := newSite(ctx)
		if err != nil {
			return err
		}
		exports := map[string]pulumi.Input{}
		exportOutputs(func(name string, value pulumi.Input) { exports[name] = value }, cfg, s)
		for name, value := range exports {
			res, err := internals.UnsafeAwaitOutput(context.Background(), pulumi.ToOutput(value))
			if err != nil {
				return err
			}
			d.outputs[name] = awaited{value: res.Value, secret: res.Secret}
		}
		return nil
	}, pulumi.WithMocks(testProject, testStack, d.rec))
	return d
}

var pushConfig = map[string]string{
	"registryUsername": "alice",
	"registryPassword": testPassword,
}

// with is base with extra's keys set over it.
func with(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	return out
}

// plain is the value at a property path of pm ("build.args.BASE_IMAGE", `tmpfs["/tmp"]`) as
// fmt prints it, a secret's value unwrapped.
func plain(t *testing.T, pm resource.PropertyMap, path string) string {
	t.Helper()
	v := at(t, pm, path)
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return fmt.Sprint(v.Mappable())
}

func stringList(t *testing.T, pm resource.PropertyMap, key string) []string {
	t.Helper()
	var out []string
	for _, e := range pm[resource.PropertyKey(key)].ArrayValue() {
		out = append(out, e.StringValue())
	}
	return out
}

func TestPushStackResources(t *testing.T) {
	d := deploy(t, pushConfig, "registryPassword")
	if d.err != nil {
		t.Fatal(d.err)
	}

	comp := d.rec.one(t, "customnginx:index:Site")
	if comp.name != "site" {
		t.Errorf("component name %q", comp.name)
	}
	// Children are named by role, so `pulumi up` and the URNs say which is which.
	for typ, want := range map[string]string{
		"docker:index/image:Image":                 "site-image",
		"docker:index/registryImage:RegistryImage": "site-push",
		"docker:index/container:Container":         "site-container",
		"command:local:Command":                    "site-smoke-check",
	} {
		if got := d.rec.one(t, typ).name; got != want {
			t.Errorf("%s is named %q, want %q", typ, got, want)
		}
	}

	image := d.rec.one(t, "docker:index/image:Image").inputs
	for path, want := range map[string]string{
		"imageName":        "docker.io/alice/custom-nginx:v1",
		"skipPush":         "true",
		"build.context":    "app",
		"build.dockerfile": "app/Dockerfile",
	} {
		if got := plain(t, image, path); got != want {
			t.Errorf("Image %s = %q, want %q", path, got, want)
		}
	}
	if platform := image["build"].ObjectValue()["platform"]; !platform.IsNull() {
		t.Errorf("no platform configured, yet build.platform %v: the provider's default must apply", platform)
	}
	if args := image["build"].ObjectValue()["args"]; !args.IsNull() && len(args.ObjectValue()) != 0 {
		t.Errorf("no baseImage configured, yet build args %v: the Dockerfile's pinned default must apply", args)
	}

	push := d.rec.one(t, "docker:index/registryImage:RegistryImage")
	for path, want := range map[string]string{
		"name":                "docker.io/alice/custom-nginx:v1",
		"keepRemotely":        "true",
		"triggers.imageId":    testImageID,
		"authConfig.address":  "registry-1.docker.io",
		"authConfig.username": "alice",
	} {
		if got := plain(t, push.inputs, path); got != want {
			t.Errorf("RegistryImage %s = %q, want %q", path, got, want)
		}
	}
	password := push.inputs["authConfig"].ObjectValue()["password"]
	if !password.IsSecret() || password.SecretValue().Element.StringValue() != testPassword {
		t.Errorf("RegistryImage authConfig.password must be the configured password, as a secret; got %v", password)
	}

	container := d.rec.one(t, "docker:index/container:Container")
	if got := plain(t, container.inputs, "image"); got != testImageID {
		t.Errorf("Container image = %q, want the built image's ID %q", got, testImageID)
	}
	if got := plain(t, container.inputs, "name"); got != "custom-nginx-dev" {
		t.Errorf("Container name = %q", got)
	}
	port := container.inputs["ports"].ArrayValue()[0].ObjectValue()
	if port["internal"].NumberValue() != 8080 || port["external"].NumberValue() != 8080 || port["ip"].StringValue() != "0.0.0.0" {
		t.Errorf("port mapping %v, want 0.0.0.0:8080->8080", port)
	}
	if !container.deleteBeforeReplace {
		t.Error("Container needs deleteBeforeReplace: two containers cannot bind one host port")
	}
	if !dependsOn(container.deps, "RegistryImage") {
		t.Errorf("Container must depend on the push, deps %v", container.deps)
	}

	smokeCheck := d.rec.one(t, "command:local:Command")
	page, err := os.ReadFile(filepath.Join("app", site.PagePath))
	if err != nil {
		t.Fatal(err)
	}
	if got := smokeCheckOf(t, smokeCheck); got.URL != "http://localhost:8080/" || got.SHA256 != sha256hex(page) {
		t.Errorf("the smoke check fetches %s for sha256 %s; want http://localhost:8080/ and the page's %s", got.URL, got.SHA256, sha256hex(page))
	}
	if !dependsOn(smokeCheck.deps, "Container") {
		t.Errorf("smoke check must run after the container, deps %v", smokeCheck.deps)
	}
	triggers := smokeCheck.inputs["triggers"].ArrayValue()
	if want := mockID("docker:index/container:Container", "site-container"); len(triggers) != 1 || triggers[0].StringValue() != want {
		t.Errorf("smoke check must re-run when the container is replaced: triggers %v", triggers)
	}

	wantOutputs := map[string]string{
		"repoUrl":       "https://hub.docker.com/r/alice/custom-nginx",
		"imageRef":      "docker.io/alice/custom-nginx@" + testDigest,
		"imageId":       testImageID,
		"url":           "http://localhost:8080/",
		"containerName": "custom-nginx-dev",
		"smokeCheck":    "custom page served",
	}
	if len(d.outputs) != len(wantOutputs) {
		t.Errorf("outputs %v, want keys of %v", d.outputs, wantOutputs)
	}
	for name, want := range wantOutputs {
		if got := d.outputs[name]; got.value != want || got.secret {
			t.Errorf("output %s = %v (secret %v), want %q in clear", name, got.value, got.secret, want)
		}
	}
}

func TestContainerRunsHardened(t *testing.T) {
	d := deploy(t, pushConfig, "registryPassword")
	if d.err != nil {
		t.Fatal(d.err)
	}
	c := d.rec.one(t, "docker:index/container:Container").inputs
	rt := site.Runtime

	for key, want := range map[string]string{
		"user":                rt.User,
		"readOnly":            fmt.Sprint(rt.ReadOnlyRoot),
		"restart":             rt.Restart,
		"mustRun":             "true",
		"stopSignal":          rt.StopSignal,
		"memory":              fmt.Sprint(rt.MemoryMB),
		"memorySwap":          fmt.Sprint(rt.MemoryMB), // equal to memory: no permanent diff, no swap
		"destroyGraceSeconds": fmt.Sprint(rt.StopTimeout.Seconds()),
		"wait":                "false", // the smoke check is the gate
	} {
		if got := plain(t, c, key); got != want {
			t.Errorf("Container %s = %q, want %q", key, got, want)
		}
	}
	if got := plain(t, c, `tmpfs["/tmp"]`); !strings.Contains(got, "noexec") || !strings.Contains(got, "size=") {
		t.Errorf("tmpfs /tmp options %q", got)
	}
	if got := strings.Join(stringList(t, c["capabilities"].ObjectValue(), "drops"), ","); got != "ALL" {
		t.Errorf("capabilities dropped: %q, want ALL", got)
	}
	if got := strings.Join(stringList(t, c, "securityOpts"), ","); got != "no-new-privileges:true" {
		t.Errorf("securityOpts %q", got)
	}
	limits := map[string]float64{}
	for _, u := range c["ulimits"].ArrayValue() {
		limits[u.ObjectValue()["name"].StringValue()] = u.ObjectValue()["hard"].NumberValue()
	}
	if limits["nproc"] == 0 || limits["nofile"] == 0 {
		t.Errorf("ulimits %v: want nproc (the process limit) and nofile", limits)
	}

	hc := c["healthcheck"].ObjectValue()
	if got := strings.Join(stringList(t, hc, "tests"), " "); got != strings.Join(rt.Health.Test, " ") {
		t.Errorf("healthcheck test %q", got)
	}
	for key, want := range map[string]string{"interval": "2s", "timeout": "2s", "startPeriod": "10s", "retries": "2"} {
		if got := plain(t, hc, key); got != want {
			t.Errorf("healthcheck %s = %q, want %q", key, got, want)
		}
	}
}

func TestNoPushRegistersNoRegistryImage(t *testing.T) {
	d := deploy(t, map[string]string{"push": "false", "hostPort": "9090"})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if found := d.rec.byType(t, "docker:index/registryImage:RegistryImage"); len(found) != 0 {
		t.Fatalf("push=false registered %d RegistryImage", len(found))
	}
	if got := plain(t, d.rec.one(t, "docker:index/image:Image").inputs, "imageName"); got != "custom-nginx:v1" {
		t.Errorf("local image name %q", got)
	}
	if _, ok := d.outputs["repoUrl"]; ok {
		t.Error("repoUrl exported although nothing was pushed")
	}
	if got := d.outputs["url"].value; got != "http://localhost:9090/" {
		t.Errorf("url %v", got)
	}
	if got := d.outputs["imageRef"].value; got != testImageID {
		t.Errorf("imageRef %v, want the local image ID", got)
	}
}

// TestPlatformAndWhereTheSiteIs: platform reaches the build; hostIp the port binding; the
// url and the smoke check use siteHost, a one-address hostIp, or the remote engine's host.
func TestPlatformAndWhereTheSiteIs(t *testing.T) {
	tests := []struct {
		name         string
		values       map[string]string
		dockerHost   string
		wantPlatform string // "" : none sent
		wantIP       string
		wantURL      string
	}{
		{"defaults", map[string]string{}, "", "", "0.0.0.0", "http://localhost:8080/"},
		{"arm64 for another server", map[string]string{"platform": "linux/arm64"}, "", "linux/arm64", "0.0.0.0", "http://localhost:8080/"},
		{"this host only", map[string]string{"hostIp": "127.0.0.1"}, "", "", "127.0.0.1", "http://127.0.0.1:8080/"},
		{"remote engine over tcp", map[string]string{}, "tcp://192.0.2.7:2376", "", "0.0.0.0", "http://192.0.2.7:8080/"},
		{"remote engine over ssh, IPv6", map[string]string{}, "ssh://deploy@[2001:db8::7]", "", "0.0.0.0", "http://[2001:db8::7]:8080/"},
		{"siteHost over the engine's host", map[string]string{"siteHost": "www.example.com"}, "tcp://192.0.2.7:2376", "", "0.0.0.0", "http://www.example.com:8080/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.dockerHost)
			d := deploy(t, with(map[string]string{"push": "false"}, tt.values))
			if d.err != nil {
				t.Fatal(d.err)
			}
			platform := d.rec.one(t, "docker:index/image:Image").inputs["build"].ObjectValue()["platform"]
			if got := fmt.Sprint(platform.V); (tt.wantPlatform == "" && !platform.IsNull()) || (tt.wantPlatform != "" && got != tt.wantPlatform) {
				t.Errorf("build.platform %v, want %q", platform, tt.wantPlatform)
			}
			port := d.rec.one(t, "docker:index/container:Container").inputs["ports"].ArrayValue()[0].ObjectValue()
			if got := port["ip"].StringValue(); got != tt.wantIP {
				t.Errorf("port published on %q, want %q", got, tt.wantIP)
			}
			if got := d.outputs["url"].value; got != tt.wantURL {
				t.Errorf("url %v, want %s", got, tt.wantURL)
			}
			if got := smokeCheckOf(t, d.rec.one(t, "command:local:Command")).URL; got != tt.wantURL {
				t.Errorf("the smoke check fetches %s, want %s", got, tt.wantURL)
			}
		})
	}
}

func TestLocalRegistryAndBaseImage(t *testing.T) {
	d := deploy(t, map[string]string{
		"registryServer":   "127.0.0.1:5000",
		"registryUsername": "ci",
		"registryPassword": testPassword,
		"repository":       "team/site",
		"imageTag":         "2026.11",
		"baseImage":        "nginx:1.28.0-alpine",
	}, "registryPassword")
	if d.err != nil {
		t.Fatal(d.err)
	}
	image := d.rec.one(t, "docker:index/image:Image").inputs
	if got := plain(t, image, "build.args."+site.BaseImageArg); got != "nginx:1.28.0-alpine" {
		t.Errorf("build arg %s = %q", site.BaseImageArg, got)
	}
	push := d.rec.one(t, "docker:index/registryImage:RegistryImage").inputs
	if got := plain(t, push, "name"); got != "127.0.0.1:5000/team/site:2026.11" {
		t.Errorf("pushed name %q", got)
	}
	if got := plain(t, push, "authConfig.address"); got != "http://127.0.0.1:5000" {
		t.Errorf("auth address %q: a loopback registry speaks plain HTTP", got)
	}
	if got := d.outputs["repoUrl"].value; got != "127.0.0.1:5000/team/site" {
		t.Errorf("repoUrl %v", got)
	}
}

func TestPasswordAppearsInNoOutput(t *testing.T) {
	d := deploy(t, pushConfig, "registryPassword")
	if d.err != nil {
		t.Fatal(d.err)
	}
	for name, out := range d.outputs {
		if strings.Contains(jsonString(out.value), testPassword) {
			t.Errorf("output %s contains the password", name)
		}
	}
	for _, res := range d.rec.resources {
		if res.typ == "docker:index/registryImage:RegistryImage" {
			continue
		}
		if strings.Contains(jsonString(res.inputs.Mappable()), testPassword) {
			t.Errorf("%s %s receives the password", res.typ, res.name)
		}
	}
}

// TestBadConfigRegistersNothing: the config rules are config.Load's (its table tests them);
// here the program must stop on them before any resource, and hand the SDK each problem
// as an error of its own, so the CLI counts and bullets them all.
func TestBadConfigRegistersNothing(t *testing.T) {
	d := deploy(t, map[string]string{"hostPort": "70000", "imageTag": "-v1"})
	var errs *multierror.Error
	if !errors.As(d.err, &errs) {
		t.Fatalf("error %v: want the problems as a multierror, one error each", d.err)
	}
	want := []string{"config registryUsername:", "config registryPassword:", "config imageTag:", "config hostPort:"}
	if len(errs.Errors) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(errs.Errors), len(want), errs.Errors)
	}
	for i, prefix := range want {
		if i < len(errs.Errors) && !strings.HasPrefix(errs.Errors[i].Error(), prefix) {
			t.Errorf("error %d %q, want it to start with %q", i, errs.Errors[i], prefix)
		}
	}
	if len(d.rec.resources) != 0 {
		t.Fatalf("bad config registered %d resources, want none", len(d.rec.resources))
	}
}

// TestDockerfile checks app/Dockerfile, parsed as BuildKit parses it, against hadolint's
// rules that apply to it and against site.Runtime, which the container repeats.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("app/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parsed, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	args := func(n *parser.Node) []string {
		var out []string
		for a := n.Next; a != nil; a = a.Next {
			out = append(out, a.Value)
		}
		return out
	}
	byInstruction := map[string][]*parser.Node{}
	for _, n := range parsed.AST.Children {
		key := strings.ToLower(n.Value)
		byInstruction[key] = append(byInstruction[key], n)
	}
	rt := site.Runtime

	// FROM the build arg, whose default is pinned (DL3006, DL3007).
	if from := byInstruction["from"]; len(from) != 1 || args(from[0])[0] != "${"+site.BaseImageArg+"}" {
		t.Errorf("want one FROM ${%s}", site.BaseImageArg)
	}
	if base, err := testsupport.DefaultBaseImage("app"); err != nil {
		t.Error(err)
	} else if err := config.ValidateBaseImage(base); err != nil {
		t.Errorf("ARG %s default: %v", site.BaseImageArg, err)
	}
	if len(byInstruction["add"]) > 0 {
		t.Error("ADD used: COPY is the rule (DL3020)")
	}
	if cmd := byInstruction["cmd"]; len(cmd) != 1 || !cmd[0].Attributes["json"] {
		t.Error("want one CMD in JSON form (DL3025)")
	}
	if users := byInstruction["user"]; len(users) == 0 {
		t.Error("no USER: the image would run as root (DL3002)")
	} else if last := args(users[len(users)-1])[0]; last != rt.User {
		t.Errorf("last USER %q, want the runtime's non-root %q", last, rt.User)
	}
	if expose := byInstruction["expose"]; len(expose) != 1 || args(expose[0])[0] != fmt.Sprint(rt.ContainerPort) {
		t.Errorf("want EXPOSE %d", rt.ContainerPort)
	}
	if stop := byInstruction["stopsignal"]; len(stop) != 1 || args(stop[0])[0] != rt.StopSignal {
		t.Errorf("want STOPSIGNAL %s", rt.StopSignal)
	}

	// HEALTHCHECK equal to the container's.
	hc := byInstruction["healthcheck"]
	if len(hc) != 1 {
		t.Fatal("want one HEALTHCHECK")
	}
	h := rt.Health
	wantFlags := []string{"--interval=" + h.Interval.String(), "--timeout=" + h.Timeout.String(),
		"--start-period=" + h.StartPeriod.String(), "--retries=" + fmt.Sprint(h.Retries)}
	if !slices.Equal(hc[0].Flags, wantFlags) {
		t.Errorf("HEALTHCHECK flags %q, want %q", hc[0].Flags, wantFlags)
	}
	if test := args(hc[0]); !hc[0].Attributes["json"] || !slices.Equal(test, h.Test) {
		t.Errorf("HEALTHCHECK %q (JSON form %v), want %q in JSON form", test, hc[0].Attributes["json"], h.Test)
	}
}

// dependsOn reports whether one of the URNs ends its type with typeSuffix, or its name
// with a name given instead ("site-rollout").
func dependsOn(deps []string, typeSuffix string) bool {
	for _, urn := range deps {
		if strings.Contains(urn, typeSuffix+"::") || strings.HasSuffix(urn, "::"+typeSuffix) {
			return true
		}
	}
	return false
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// at is the value at a property path ("taskSpec.mounts[0].type") of pm; secrets stay wrapped.
func at(t *testing.T, pm resource.PropertyMap, path string) resource.PropertyValue {
	t.Helper()
	parsed, err := resource.ParsePropertyPath(path)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := parsed.Get(resource.NewObjectProperty(pm))
	if !ok {
		t.Fatalf("no value at %s", path)
	}
	return v
}

func TestSwarmService(t *testing.T) {
	swarm := with(pushConfig, map[string]string{"mode": "swarm", "siteHost": "manager.example.com"})
	rt := site.Runtime
	tests := []struct {
		name         string
		values       map[string]string
		wantOrder    string
		wantReplicas any // nil: global
		maxPerNode   any // nil: no limit
	}{
		{"replicated behind the routing mesh", swarm, "start-first", 2.0, nil},
		{"host publishing, one task per node", with(swarm, map[string]string{"publishMode": "host", "replicas": "3"}), "stop-first", 3.0, 1.0},
		{"global", with(swarm, map[string]string{"serviceMode": "global", "publishMode": "host"}), "stop-first", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deploy(t, tt.values, "registryPassword")
			if d.err != nil {
				t.Fatal(d.err)
			}
			if found := d.rec.byType(t, "docker:index/container:Container"); len(found) != 0 {
				t.Fatalf("swarm mode registered %d Containers", len(found))
			}
			service := d.rec.one(t, "docker:index/service:Service")
			in := service.inputs
			expect := func(path string, want any) {
				t.Helper()
				if got := at(t, in, path).Mappable(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("Service %s = %v, want %v", path, got, want)
				}
			}
			// Every node runs exactly the pushed build.
			expect("name", "custom-nginx-dev")
			expect("taskSpec.containerSpec.image", "docker.io/alice/custom-nginx@"+testDigest)
			if !dependsOn(service.deps, "RegistryImage") {
				t.Errorf("the Service must depend on the push, deps %v", service.deps)
			}
			// Nodes pull with the credentials; the password only as a secret.
			expect("auth.serverAddress", "docker.io")
			expect("auth.username", "alice")
			if password := at(t, in, "auth.password"); !password.IsSecret() || password.SecretValue().Element.StringValue() != testPassword {
				t.Errorf("Service auth.password must be the password, as a secret; got %v", password)
			}
			// The container's hardened runtime.
			expect("taskSpec.containerSpec.user", rt.User)
			expect("taskSpec.containerSpec.readOnly", rt.ReadOnlyRoot)
			expect("taskSpec.containerSpec.mounts[0].type", "tmpfs")
			expect("taskSpec.containerSpec.mounts[0].target", rt.Tmpfs.Path)
			expect("taskSpec.containerSpec.capDrops", rt.CapDrop)
			expect("taskSpec.containerSpec.stopSignal", rt.StopSignal)
			expect("taskSpec.containerSpec.stopGracePeriod", rt.StopTimeout.String())
			expect("taskSpec.containerSpec.healthcheck.tests", rt.Health.Test)
			expect("taskSpec.containerSpec.healthcheck.interval", rt.Health.Interval.String())
			expect("taskSpec.resources.limits.memoryBytes", float64(rt.MemoryMB<<20))
			expect("taskSpec.restartPolicy.condition", "any")
			expect("endpointSpec.ports[0].targetPort", float64(rt.ContainerPort))
			expect("endpointSpec.ports[0].publishedPort", 8080.0)
			// Rolling updates: one task at a time, rolled back when it does not come up healthy.
			for _, cfg := range []string{"updateConfig", "rollbackConfig"} {
				expect(cfg+".parallelism", 1.0)
				if delay, err := time.ParseDuration(at(t, in, cfg+".delay").StringValue()); err != nil || delay <= 0 {
					t.Errorf("%s.delay %v (%v): with none Swarm can stop the next task before it sees the last one fail", cfg, delay, err)
				}
				expect(cfg+".order", tt.wantOrder)
				monitor, err := time.ParseDuration(at(t, in, cfg+".monitor").StringValue())
				if healthy := rt.Health.Interval + rt.Health.Timeout; err != nil || monitor <= healthy {
					t.Errorf("%s.monitor %v (%v) must outlast a healthcheck's verdict (%s)", cfg, monitor, err, healthy)
				}
			}
			expect("updateConfig.failureAction", "rollback")
			if !at(t, in, "convergeConfig.timeout").IsString() {
				t.Error("no convergeConfig: pulumi up would return before the tasks run")
			}
			if tt.wantReplicas == nil {
				expect("mode.global", true)
			} else {
				expect("mode.replicated.replicas", tt.wantReplicas)
			}
			if tt.maxPerNode != nil {
				expect("taskSpec.placement.maxReplicas", tt.maxPerNode)
			}

			// The rollout gate: this program in its check mode, after the service.
			gate := d.rec.named(t, "site-rollout")
			argv := append(stringList(t, gate.inputs, "interpreter"), plain(t, gate.inputs, "create"))
			program, err := site.ProgramPath()
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]string{program, rollout.Command}, rollout.Args("", 3*time.Minute, "custom-nginx-dev")...); !slices.Equal(argv, want) {
				t.Errorf("the rollout gate runs %q, want %q", argv, want)
			}
			if !dependsOn(gate.deps, "Service") {
				t.Errorf("the rollout gate must run after the service, deps %v", gate.deps)
			}
			smoke := d.rec.named(t, "site-smoke-check")
			if !dependsOn(smoke.deps, "site-rollout") {
				t.Errorf("the smoke check must run after the rollout gate, deps %v", smoke.deps)
			}
			for _, cmd := range []registered{gate, smoke} {
				if triggers := fmt.Sprint(at(t, cmd.inputs, "triggers").Mappable()); !strings.Contains(triggers, testDigest) {
					t.Errorf("%s must re-run for a rolled-out image: triggers %v", cmd.name, triggers)
				}
			}
			if got := d.outputs["url"].value; got != "http://manager.example.com:8080/" {
				t.Errorf("url %v", got)
			}
			if got := d.outputs["serviceName"].value; got != "custom-nginx-dev" {
				t.Errorf("serviceName %v", got)
			}
			if got := d.outputs["replicas"].value; fmt.Sprint(got) != fmt.Sprint(tt.wantReplicas) {
				t.Errorf("replicas output %v, want %v", got, tt.wantReplicas)
			}
			if _, ok := d.outputs["containerName"]; ok {
				t.Error("swarm mode exports containerName")
			}
		})
	}
}

// smokeCheckOf is the check the Command runs: this program's binary in its check mode, with
// no shell, the create string appended as the last argument, as the command provider does.
func smokeCheckOf(t *testing.T, cmd registered) smoke.Check {
	t.Helper()
	argv := append(stringList(t, cmd.inputs, "interpreter"), cmd.inputs["create"].StringValue())
	program, err := site.ProgramPath()
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) < 3 || argv[0] != program || argv[1] != smoke.Command {
		t.Fatalf("the smoke check runs %q, want %s %s …", argv, program, smoke.Command)
	}
	check, err := smoke.Parse(argv[2:])
	if err != nil {
		t.Fatalf("the smoke check's arguments %q: %v", argv[2:], err)
	}
	return check
}
