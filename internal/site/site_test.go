package site_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineplatform"
	"github.com/example/custom-nginx/internal/hardened"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/smoke"
	"github.com/example/custom-nginx/internal/testsupport"
)

const (
	projectRoot  = "../.."
	testPassword = "dckr_pat_unit-test-password"
	runningName  = "custom-nginx-dev"
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
	return testsupport.NewStackConfig(t, projectRoot, testsupport.With(pushValues, extra), config.KeyRegistryPassword).Load(t, "")
}

// deployed is what site.New registered for one config under mocks, and the component's
// outputs as they resolved.
type deployed struct {
	rec     *testsupport.Recorder
	outputs map[string]string // url, imageId, imageRef, repoUrl (when pushing)
}

// enginePlatform is the platform the engine of the tests under mocks runs: not this
// machine's, so a build for it shows it was asked.
const enginePlatform = "linux/s390x"

// outside is what New asks the outside world, answered: a registry that allows the push
// and an engine on enginePlatform.
func outside() site.Args {
	return site.Args{
		PushCheck: func(context.Context, config.Config) error { return nil },
		EnginePlatform: func(context.Context, config.Config) (engineplatform.Platforms, error) {
			return engineplatform.Platforms{Engine: enginePlatform}, nil
		},
	}
}

// deploy runs site.New from the project folder, as `pulumi up` does, under mocks, with
// outside's answers.
func deploy(t *testing.T, cfg config.Config) deployed {
	t.Helper()
	d, err := deployWith(t, cfg, outside())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deployWith is deploy with answers' PushCheck and EnginePlatform, and run's options
// (asPreview for a preview).
func deployWith(t *testing.T, cfg config.Config, answers site.Args, run ...pulumi.RunOption) (deployed, error) {
	t.Helper()
	t.Chdir(projectDir)
	d := deployed{rec: &testsupport.Recorder{}, outputs: map[string]string{}}
	args := site.Args{Config: cfg, AppDir: "app", RunningName: runningName, PushCheck: answers.PushCheck, EnginePlatform: answers.EnginePlatform}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		s, err := site.New(ctx, "site", args)
		if err != nil {
			return err
		}
		outputs := map[string]pulumi.StringOutput{"url": s.URL, "imageId": s.ImageID, "imageRef": s.ImageRef}
		if s.Push != nil {
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

// TestPushCheckedFirst: on `up` the registry is asked before anything is registered, with
// the stack's config; its refusal is the error, and nothing is created. Without a push
// nothing is asked.
func TestPushCheckedFirst(t *testing.T) {
	cfg := pushConfig(t, nil)
	local := testsupport.NewStackConfig(t, projectRoot, map[string]string{config.KeyPush: "false"}).Load(t, "")
	var asked []config.Config
	refusal := errors.New("config registryPassword: docker.io refused the login of alice")
	refusing := outside()
	refusing.PushCheck = func(_ context.Context, got config.Config) error { asked = append(asked, got); return refusal }
	d, err := deployWith(t, cfg, refusing)
	if !errors.Is(err, refusal) {
		t.Errorf("error %v, want the push check's %v", err, refusal)
	}
	if len(asked) != 1 || !reflect.DeepEqual(asked[0], cfg) {
		t.Errorf("the push check was asked %d times (%v), want once with the stack's config", len(asked), asked)
	}
	if n := len(d.rec.All()); n != 0 {
		t.Errorf("a refused push registered %d resources, want none", n)
	}

	asked = nil
	if _, err := deployWith(t, local, refusing); err != nil || len(asked) != 0 {
		t.Errorf("push=false: error %v, %d push checks; want none of either", err, len(asked))
	}
}

func TestChildrenNamedByRole(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	if comp := d.rec.One(t, testsupport.TypeSite); comp.Name != "site" {
		t.Errorf("component name %q", comp.Name)
	}
	// Children are named by role, so `pulumi up` and the URNs say which is which.
	for name, typ := range map[string]string{
		"site-image":       testsupport.TypeImage,
		"site-preflight":   testsupport.TypeCommand,
		"site-push":        testsupport.TypeRegistryImage,
		"site-container":   testsupport.TypeContainer, // the port holder
		"site-nginx":       testsupport.TypeContainer,
		"site-smoke-check": testsupport.TypeCommand,
	} {
		if got := d.rec.Named(t, name); got.Type != typ {
			t.Errorf("%s is a %s, want a %s", name, got.Type, typ)
		}
	}
	if n := len(d.rec.All()); n != 7 {
		t.Errorf("%d resources, want the component and its 6 children", n)
	}
}

func TestImageBuildsTheApp(t *testing.T) {
	image := deploy(t, pushConfig(t, nil)).rec.One(t, testsupport.TypeImage).Inputs
	for path, want := range map[string]string{
		"imageName":        "docker.io/alice/custom-nginx:v1",
		"skipPush":         "true",
		"build.context":    "app",
		"build.dockerfile": "app/Dockerfile",
	} {
		if got := testsupport.Plain(t, image, path); got != want {
			t.Errorf("Image %s = %q, want %q", path, got, want)
		}
	}
	if args := image["build"].ObjectValue()["args"]; !args.IsNull() && len(args.ObjectValue()) != 0 {
		t.Errorf("no baseImage configured, yet build args %v: the Dockerfile's pinned default must apply", args)
	}
}

func TestPushSendsTheBuild(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	push := d.rec.One(t, testsupport.TypeRegistryImage)
	for path, want := range map[string]string{
		"name":                "docker.io/alice/custom-nginx:v1",
		"keepRemotely":        "true",
		"triggers.imageId":    testsupport.MockImageID,
		"authConfig.address":  "registry-1.docker.io",
		"authConfig.username": "alice",
	} {
		if got := testsupport.Plain(t, push.Inputs, path); got != want {
			t.Errorf("RegistryImage %s = %q, want %q", path, got, want)
		}
	}
	password := push.Inputs["authConfig"].ObjectValue()["password"]
	if !password.IsSecret() || password.SecretValue().Element.StringValue() != testPassword {
		t.Errorf("RegistryImage authConfig.password must be the configured password, as a secret; got %v", password)
	}
	if got, want := d.outputs["imageRef"], "docker.io/alice/custom-nginx@"+testsupport.MockDigest; got != want {
		t.Errorf("imageRef %s, want the pushed digest %s", got, want)
	}
}

// TestContainerRunsTheBuild: nginx runs the build in the port holder's network, named for
// what it runs, replaced create-before-delete; the holder publishes the port, keeps its
// image, and goes first when it is replaced.
func TestContainerRunsTheBuild(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	nginx, holder := d.rec.Named(t, "site-nginx"), d.rec.Named(t, "site-container")
	if got := testsupport.Plain(t, nginx.Inputs, "image"); got != testsupport.MockImageID {
		t.Errorf("nginx's image = %q, want the built image's ID %q", got, testsupport.MockImageID)
	}
	if got := testsupport.Plain(t, nginx.Inputs, "name"); !regexp.MustCompile("^" + runningName + "-[0-9a-f]{12}$").MatchString(got) {
		t.Errorf("nginx's name = %q, want %s-<12 hex digits>", got, runningName)
	}
	if got, want := testsupport.Plain(t, nginx.Inputs, "networkMode"), "container:"+testsupport.MockID(testsupport.TypeContainer, "site-container"); got != want {
		t.Errorf("nginx's networkMode = %q, want %q", got, want)
	}
	// Said outright: the provider would ask for delete-before-replace.
	if _, ok := nginx.Inputs["ports"]; ok || nginx.DeleteBeforeReplace || !nginx.DeleteBeforeReplaceSet {
		t.Errorf("nginx publishes %v, deleteBeforeReplace %v (set %v): the holder publishes, so nginx must be created before the old one goes",
			nginx.Inputs["ports"], nginx.DeleteBeforeReplace, nginx.DeleteBeforeReplaceSet)
	}
	if !testsupport.DependsOn(nginx.Deps, "RegistryImage") {
		t.Errorf("nginx must depend on the push, deps %v", nginx.Deps)
	}
	if got := testsupport.Plain(t, holder.Inputs, "name"); got != runningName+site.PortHolderSuffix {
		t.Errorf("the port holder's name = %q", got)
	}
	port := holder.Inputs["ports"].ArrayValue()[0].ObjectValue()
	if port["internal"].NumberValue() != float64(hardened.Runtime.ContainerPort) || port["external"].NumberValue() != 8080 || port["ip"].StringValue() != "0.0.0.0" {
		t.Errorf("port mapping %v, want 0.0.0.0:8080->%d", port, hardened.Runtime.ContainerPort)
	}
	if !holder.DeleteBeforeReplace || !slices.Equal(holder.IgnoreChanges, []string{"image"}) {
		t.Errorf("the port holder: deleteBeforeReplace %v (two cannot bind one host port), ignoreChanges %v (a new build must not replace it)", holder.DeleteBeforeReplace, holder.IgnoreChanges)
	}
	for key, want := range map[string]string{"command": "[sleep 2147483647]", "user": hardened.Runtime.User, "readOnly": "true", "stopSignal": "SIGKILL", "healthcheck.tests": "[NONE]"} {
		if got := testsupport.Plain(t, holder.Inputs, key); got != want {
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
	if !testsupport.DependsOn(smokeCheck.Deps, "Container") {
		t.Errorf("smoke check must run after the container, deps %v", smokeCheck.Deps)
	}
	triggers := smokeCheck.Inputs["triggers"].ArrayValue()
	if want := testsupport.MockID(testsupport.TypeContainer, "site-nginx"); len(triggers) != 1 || triggers[0].StringValue() != want {
		t.Errorf("smoke check must re-run when the container is replaced: triggers %v", triggers)
	}
	if got := d.outputs["url"]; got != "http://localhost:8080/" {
		t.Errorf("url %s, want where the smoke check found the page", got)
	}
}

func TestNoPushRegistersNoRegistryImage(t *testing.T) {
	cfg := testsupport.NewStackConfig(t, projectRoot, map[string]string{config.KeyPush: "false", config.KeyHostPort: "9090"}).Load(t, "")
	d := deploy(t, cfg)
	if found := d.rec.ByType(testsupport.TypeRegistryImage); len(found) != 0 {
		t.Fatalf("push=false registered %d RegistryImage", len(found))
	}
	if got := testsupport.Plain(t, d.rec.One(t, testsupport.TypeImage).Inputs, "imageName"); got != "custom-nginx:v1" {
		t.Errorf("local image name %q", got)
	}
	if got := d.outputs["url"]; got != "http://localhost:9090/" {
		t.Errorf("url %v", got)
	}
	if got := d.outputs["imageRef"]; got != testsupport.MockImageID {
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
	image := d.rec.One(t, testsupport.TypeImage).Inputs
	if got := testsupport.Plain(t, image, "build.args."+site.BaseImageArg); got != "nginx:1.28.0-alpine" {
		t.Errorf("build arg %s = %q", site.BaseImageArg, got)
	}
	push := d.rec.One(t, testsupport.TypeRegistryImage).Inputs
	if got := testsupport.Plain(t, push, "name"); got != "127.0.0.1:5000/team/site:2026.11" {
		t.Errorf("pushed name %q", got)
	}
	if got := testsupport.Plain(t, push, "authConfig.address"); got != "http://127.0.0.1:5000" {
		t.Errorf("auth address %q: a loopback registry speaks plain HTTP", got)
	}
	if got := d.outputs["repoUrl"]; got != "127.0.0.1:5000/team/site" {
		t.Errorf("repoUrl %v", got)
	}
}

// TestPasswordReachesOnlyThePush: in container mode the password is an input of the push
// alone (swarm mode also gives it to the service's auth: TestSwarmService).
func TestPasswordReachesOnlyThePush(t *testing.T) {
	d := deploy(t, pushConfig(t, nil))
	for _, res := range d.rec.All() {
		if res.Type == testsupport.TypeRegistryImage {
			continue
		}
		if strings.Contains(jsonString(res.Inputs.Mappable()), testPassword) {
			t.Errorf("%s %s receives the password", res.Type, res.Name)
		}
	}
}

// smokeCheckOf is the check the Command runs: this program's binary in its check mode, with
// no shell, the create string appended as the last argument, as the command provider does.
func smokeCheckOf(t *testing.T, cmd testsupport.Registered) smoke.Check {
	t.Helper()
	argv := append(testsupport.StringList(cmd.Inputs, "interpreter"), cmd.Inputs["create"].StringValue())
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
