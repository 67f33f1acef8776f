package site_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/subcommand"
)

const (
	projectRoot  = "../.."
	testPassword = "dckr_pat_unit-test-password"
	namePrefix   = "custom-nginx-dev"
)

// projectDir is projectRoot as an absolute path, which a test can change to more than once.
var projectDir, _ = filepath.Abs(projectRoot)

var pushValues = map[string]string{
	config.KeyRegistryUsername: "alice",
	config.KeyRegistryPassword: testPassword,
}

// pushConfig is the default stack's config with Docker Hub credentials, on the local engine.
func pushConfig(t *testing.T, extra map[string]string) config.Config {
	t.Helper()
	return pulumimock.NewStackConfig(t, projectRoot, pulumimock.With(pushValues, extra), config.KeyRegistryPassword).Load(t, "")
}

// deployed is what site.New registered for one config under mocks, and the component's
// outputs as they resolved.
type deployed struct {
	rec     *pulumimock.Recorder
	outputs map[string]string // url, imageId, imageRef, repoUrl (when pushing)
}

// enginePlatform is the platform the engine of the tests under mocks runs: not this
// machine's, so a build for it shows the config's platform reached the build.
const enginePlatform = "linux/s390x"

// onEngine is cfg completed, as the program completes it, for an engine on platform.
func onEngine(t *testing.T, cfg config.Config, platform string) config.Config {
	t.Helper()
	cfg, err := cfg.ForEngine(config.EnginePlatforms{Engine: platform})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// deploy runs site.New from the project folder, as `pulumi up` does, under mocks, for an
// engine on enginePlatform.
func deploy(t *testing.T, cfg config.Config) deployed {
	t.Helper()
	d, err := deployWith(t, onEngine(t, cfg, enginePlatform))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deployWith is deploy of a complete cfg, with run's options.
func deployWith(t *testing.T, cfg config.Config, run ...pulumi.RunOption) (deployed, error) {
	t.Helper()
	t.Chdir(projectDir)
	d := deployed{rec: &pulumimock.Recorder{}, outputs: map[string]string{}}
	args := site.Args{Config: cfg, AppDir: "app", NamePrefix: namePrefix}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		s, err := site.New(ctx, "site", args)
		if err != nil {
			return err
		}
		outputs := map[string]pulumi.StringOutput{"url": s.URL, "imageId": s.ImageID, "imageRef": s.ImageRef}
		if cfg.Push {
			outputs["repoUrl"] = s.RepoURL
		}
		for name, out := range outputs {
			res, err := internals.UnsafeAwaitOutput(context.Background(), out)
			if err != nil {
				return err
			}
			d.outputs[name] = fmt.Sprint(res.Value)
		}
		return nil
	}, append([]pulumi.RunOption{pulumi.WithMocks("custom-nginx", "dev", d.rec)}, run...)...)
	return d, err
}

// TestPushCheckBeforeEveryPush: when pushing, the push check runs this program's push-check
// subcommand against the stack's registry, repository and user, with the password a secret
// in its environment, and every build waits for it. It runs again when what a build sees
// (app/, the base, the platforms) or the password changes, and not on a no-op, which so
// asks the registry nothing. Without a push there is none.
func TestPushCheckBeforeEveryPush(t *testing.T) {
	localOnly := pulumimock.NewStackConfig(t, projectRoot, map[string]string{config.KeyPush: "false"}).Load(t, "")
	d := deploy(t, pushConfig(t, nil))
	check := d.rec.Named(t, "site-push-check")
	program, err := site.ProgramPath()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(pulumimock.StringList(check.Inputs, "interpreter"), pulumimock.Plain(t, check.Inputs, "create"))
	want := append([]string{program, subcommand.PushCheckName}, subcommand.PushCheck{RegistryServer: "docker.io", Username: "alice",
		Repository: "alice/custom-nginx", Tag: "v1"}.Args()...)
	if !slices.Equal(argv, want) {
		t.Errorf("the push check runs %q, want %q", argv, want)
	}
	if password := pulumimock.At(t, check.Inputs, "environment."+subcommand.PasswordEnv); !password.IsSecret() {
		t.Errorf("the password reaches the push check as %v, want a secret in its environment", password)
	}
	triggers := check.Inputs["triggers"].ArrayValue()
	if len(triggers) != 4 || !regexp.MustCompile("^[0-9a-f]{64}$").MatchString(triggers[0].StringValue()) || !triggers[3].IsSecret() {
		t.Errorf("the push check's triggers %v, want app/'s hash, the base, the platforms and the password's hash, a secret", triggers)
	}
	if !pulumimock.DependsOn(d.rec.Named(t, "site-image").Deps, "site-push-check") {
		t.Errorf("the build does not wait for the push check: deps %v", d.rec.Named(t, "site-image").Deps)
	}
	for _, res := range deploy(t, localOnly).rec.All() {
		if res.Name == "site-push-check" {
			t.Error("push=false registered a push check")
		}
	}
}

func TestChildrenNamedByRole(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	if comp := d.rec.One(t, pulumimock.TypeSite); comp.Name != "site" {
		t.Errorf("component name %q", comp.Name)
	}
	// Children are named by role, so `pulumi up` and the URNs say which is which.
	for name, typ := range map[string]string{
		"site-image":       pulumimock.TypeImage,
		"site-preflight":   pulumimock.TypeCommand,
		"site-push":        pulumimock.TypeRegistryImage,
		"site-push-check":  pulumimock.TypeCommand,
		"site-port-holder": pulumimock.TypeContainer,
		"site-nginx":       pulumimock.TypeContainer,
		"site-smoke-check": pulumimock.TypeCommand,
	} {
		if got := d.rec.Named(t, name); got.Type != typ {
			t.Errorf("%s is a %s, want a %s", name, got.Type, typ)
		}
	}
	if n := len(d.rec.All()); n != 8 {
		t.Errorf("%d resources, want the component and its 7 children", n)
	}
	// Renamed children keep their state: the port holder was site-container, and before
	// that, as the image and the push, named after the component.
	for name, want := range map[string][]string{
		"site-port-holder": {"site-container", "site"},
		"site-image":       {"site"},
		"site-push":        {"site"},
	} {
		if got := d.rec.Named(t, name).Aliases; !slices.Equal(got, want) {
			t.Errorf("%s has the aliases %q, want %q", name, got, want)
		}
	}
}

func TestImageBuildsTheApp(t *testing.T) {
	image := deploy(t, pushConfig(t, nil)).rec.One(t, pulumimock.TypeImage).Inputs
	for path, want := range map[string]string{
		"imageName":        "docker.io/alice/custom-nginx:v1",
		"skipPush":         "true",
		"build.context":    "app",
		"build.dockerfile": "app/Dockerfile",
	} {
		if got := pulumimock.Plain(t, image, path); got != want {
			t.Errorf("Image %s = %q, want %q", path, got, want)
		}
	}
	if args := image["build"].ObjectValue()["args"]; !args.IsNull() && len(args.ObjectValue()) != 0 {
		t.Errorf("no baseImage configured, yet build args %v: the Dockerfile's pinned default must apply", args)
	}
}

func TestPushSendsTheBuild(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	push := d.rec.One(t, pulumimock.TypeRegistryImage)
	for path, want := range map[string]string{
		"name":                "docker.io/alice/custom-nginx:v1",
		"keepRemotely":        "true",
		"triggers.imageId":    pulumimock.MockImageID,
		"authConfig.address":  "registry-1.docker.io",
		"authConfig.username": "alice",
	} {
		if got := pulumimock.Plain(t, push.Inputs, path); got != want {
			t.Errorf("RegistryImage %s = %q, want %q", path, got, want)
		}
	}
	password := push.Inputs["authConfig"].ObjectValue()["password"]
	if !password.IsSecret() || password.SecretValue().Element.StringValue() != testPassword {
		t.Errorf("RegistryImage authConfig.password must be the configured password, as a secret; got %v", password)
	}
	if got, want := d.outputs["imageRef"], "docker.io/alice/custom-nginx@"+pulumimock.MockDigest; got != want {
		t.Errorf("imageRef %s, want the pushed digest %s", got, want)
	}
}

// TestContainerRunsTheBuild: nginx runs the build in the port holder's network, named for
// what it runs, replaced create-before-delete; the holder publishes the port, keeps its
// image, and goes first when it is replaced.
func TestContainerRunsTheBuild(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	nginx, holder := d.rec.Named(t, "site-nginx"), d.rec.Named(t, "site-port-holder")
	if got := pulumimock.Plain(t, nginx.Inputs, "image"); got != pulumimock.MockImageID {
		t.Errorf("nginx's image = %q, want the built image's ID %q", got, pulumimock.MockImageID)
	}
	if got := pulumimock.Plain(t, nginx.Inputs, "name"); !regexp.MustCompile("^" + namePrefix + "-[0-9a-f]{12}$").MatchString(got) {
		t.Errorf("nginx's name = %q, want %s-<12 hex digits>", got, namePrefix)
	}
	if got, want := pulumimock.Plain(t, nginx.Inputs, "networkMode"), "container:"+pulumimock.MockID(pulumimock.TypeContainer, "site-port-holder"); got != want {
		t.Errorf("nginx's networkMode = %q, want %q", got, want)
	}
	// Said outright: the provider would ask for delete-before-replace.
	if _, ok := nginx.Inputs["ports"]; ok || nginx.DeleteBeforeReplace || !nginx.DeleteBeforeReplaceSet {
		t.Errorf("nginx publishes %v, deleteBeforeReplace %v (set %v): the holder publishes, so nginx must be created before the old one goes",
			nginx.Inputs["ports"], nginx.DeleteBeforeReplace, nginx.DeleteBeforeReplaceSet)
	}
	// nginx runs the proven build while it is pushed; `up` succeeds once both are done.
	if !pulumimock.DependsOn(nginx.Deps, "site-preflight") || pulumimock.DependsOn(nginx.Deps, "RegistryImage") {
		t.Errorf("nginx must follow the preflight, not the push: deps %v", nginx.Deps)
	}
	if smokeCheck := d.rec.Named(t, "site-smoke-check"); !pulumimock.DependsOn(smokeCheck.Deps, "site-push") {
		t.Errorf("the smoke check must follow the push: deps %v", smokeCheck.Deps)
	}
	if got := pulumimock.Plain(t, holder.Inputs, "name"); got != namePrefix+site.PortHolderSuffix {
		t.Errorf("the port holder's name = %q", got)
	}
	port := holder.Inputs["ports"].ArrayValue()[0].ObjectValue()
	if port["internal"].NumberValue() != float64(engine.Hardened.ContainerPort) || port["external"].NumberValue() != 8080 || port["ip"].StringValue() != "0.0.0.0" {
		t.Errorf("port mapping %v, want 0.0.0.0:8080->%d", port, engine.Hardened.ContainerPort)
	}
	if !holder.DeleteBeforeReplace || !slices.Equal(holder.IgnoreChanges, []string{"image"}) {
		t.Errorf("the port holder: deleteBeforeReplace %v (two cannot bind one host port), ignoreChanges %v (a new build must not replace it)", holder.DeleteBeforeReplace, holder.IgnoreChanges)
	}
	// Its healthcheck timings are its own, not the image's: a new image shows no diff here.
	for key, want := range map[string]string{"command": "[sleep 2147483647]", "user": engine.Hardened.User, "readOnly": "true", "stopSignal": "SIGKILL",
		"healthcheck.tests": "[NONE]", "healthcheck.interval": "2s", "healthcheck.timeout": "2s", "healthcheck.startPeriod": "10s", "healthcheck.retries": "2"} {
		if got := pulumimock.Plain(t, holder.Inputs, key); got != want {
			t.Errorf("the port holder's %s = %q, want %q", key, got, want)
		}
	}
}

func TestSmokeCheckProvesThePage(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	smokeCheck := d.rec.Named(t, "site-smoke-check")
	want, err := site.PageSHA256("app") // deploy moved to the project folder
	if err != nil {
		t.Fatal(err)
	}
	if got := smokeCheckOf(t, smokeCheck); got.URL != "http://localhost:8080/" || got.SHA256 != want {
		t.Errorf("the smoke check fetches %s for sha256 %s; want http://localhost:8080/ and the page's %s", got.URL, got.SHA256, want)
	}
	if !pulumimock.DependsOn(smokeCheck.Deps, "Container") {
		t.Errorf("smoke check must run after the container, deps %v", smokeCheck.Deps)
	}
	triggers := smokeCheck.Inputs["triggers"].ArrayValue()
	if want := pulumimock.MockID(pulumimock.TypeContainer, "site-nginx"); len(triggers) != 1 || triggers[0].StringValue() != want {
		t.Errorf("smoke check must re-run when the container is replaced: triggers %v", triggers)
	}
	if got := d.outputs["url"]; got != "http://localhost:8080/" {
		t.Errorf("url %s, want where the smoke check found the page", got)
	}
}

func TestNoPushRegistersNoRegistryImage(t *testing.T) {
	cfg := pulumimock.NewStackConfig(t, projectRoot, map[string]string{config.KeyPush: "false", config.KeyHostPort: "9090"}).Load(t, "")
	d := deploy(t, cfg)
	if found := d.rec.ByType(pulumimock.TypeRegistryImage); len(found) != 0 {
		t.Fatalf("push=false registered %d RegistryImage", len(found))
	}
	if got := pulumimock.Plain(t, d.rec.One(t, pulumimock.TypeImage).Inputs, "imageName"); got != "custom-nginx:v1" {
		t.Errorf("local image name %q", got)
	}
	if got := d.outputs["url"]; got != "http://localhost:9090/" {
		t.Errorf("url %v", got)
	}
	if got := d.outputs["imageRef"]; got != pulumimock.MockImageID {
		t.Errorf("imageRef %v, want the local image ID", got)
	}
}

func TestLocalRegistryAndBaseImage(t *testing.T) {
	d := deploy(t, pushConfig(t, map[string]string{
		config.KeyRegistryServer:   "127.0.0.1:5000",
		config.KeyRegistryUsername: "ci",
		config.KeyRepository:       "team/site",
		config.KeyImageTag:         "2026.11",
		config.KeyBaseImage:        "nginx:1.28.0-alpine",
	}))
	image := d.rec.One(t, pulumimock.TypeImage).Inputs
	if got := pulumimock.Plain(t, image, "build.args."+site.BaseImageArg); got != "nginx:1.28.0-alpine" {
		t.Errorf("build arg %s = %q", site.BaseImageArg, got)
	}
	push := d.rec.One(t, pulumimock.TypeRegistryImage).Inputs
	if got := pulumimock.Plain(t, push, "name"); got != "127.0.0.1:5000/team/site:2026.11" {
		t.Errorf("pushed name %q", got)
	}
	if got := pulumimock.Plain(t, push, "authConfig.address"); got != "http://127.0.0.1:5000" {
		t.Errorf("auth address %q: a loopback registry speaks plain HTTP", got)
	}
	if got := d.outputs["repoUrl"]; got != "127.0.0.1:5000/team/site" {
		t.Errorf("repoUrl %v", got)
	}
}

// TestPasswordReachesOnlyThePush: in container mode the password is an input of the push
// and, as a secret in its environment, of the push check alone (swarm mode also gives it to
// the service's auth: TestSwarmService).
func TestPasswordReachesOnlyThePush(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	for _, res := range d.rec.All() {
		if res.Type == pulumimock.TypeRegistryImage {
			continue
		}
		if res.Name == "site-push-check" {
			delete(res.Inputs, "environment") // a secret: TestPushCheckBeforeEveryPush
		}
		if strings.Contains(jsonString(res.Inputs.Mappable()), testPassword) {
			t.Errorf("%s %s receives the password", res.Type, res.Name)
		}
	}
}

// smokeCheckOf is the check the Command runs: this program's binary in its subcommand, with
// no shell, the create string appended as the last argument, as the command provider does.
func smokeCheckOf(t *testing.T, cmd pulumimock.Registered) subcommand.SmokeCheck {
	t.Helper()
	argv := append(pulumimock.StringList(cmd.Inputs, "interpreter"), cmd.Inputs["create"].StringValue())
	program, err := site.ProgramPath()
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) < 3 || argv[0] != program || argv[1] != subcommand.SmokeCheckName {
		t.Fatalf("the smoke check runs %q, want %s %s …", argv, program, subcommand.SmokeCheckName)
	}
	check, err := subcommand.ParseSmokeCheck(argv[2:])
	if err != nil {
		t.Fatalf("the smoke check's arguments %q: %v", argv[2:], err)
	}
	return check
}

// pageSHA256 is the SHA-256 of the custom page, as the checks prove it.
func pageSHA256(t *testing.T) string {
	t.Helper()
	sum, err := site.PageSHA256(filepath.Join(projectRoot, "app"))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
