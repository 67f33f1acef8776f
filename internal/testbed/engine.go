// Package testbed is the real world the end-to-end tests and the benchmarks run against:
// the Docker engine through its official Go client, a registry, a two-node swarm and a test
// Docker Hub in network namespaces, the host's nginx, headless Chromium, arm64 emulation,
// TCP forwarding; the project copied into a workspace with its stacks; and checks of the
// served site, once (CheckSite) or throughout a change (Probe), and of what a run leaves.
// Unit tests use internal/pulumimock instead, and link none of this.
package testbed

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/site"
)

// BaseImageEnv names the environment variable that sets the base image for tests and
// benchmarks; without it they use the Dockerfile's pinned default (pulled if missing).
const BaseImageEnv = "TEST_BASE_IMAGE"

// Engine is a connected Docker engine client.
type Engine struct{ *client.Client }

// ConnectEngine connects to the engine named by DOCKER_HOST (default: the local socket).
func ConnectEngine(ctx context.Context) (*Engine, error) {
	return connectEngine(ctx, client.FromEnv)
}

// ConnectEngineAt connects to the engine at host, a DOCKER_HOST value such as
// unix:///tmp/x/docker.sock, whatever DOCKER_HOST says.
func ConnectEngineAt(ctx context.Context, host string) (*Engine, error) {
	return connectEngine(ctx, client.WithHost(host))
}

// connectEngine connects where opt says and pings, so a missing engine is told at once.
func connectEngine(ctx context.Context, opt client.Opt) (*Engine, error) {
	cli, err := client.NewClientWithOpts(opt, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker engine at %s: %w", cli.DaemonHost(), err)
	}
	return &Engine{cli}, nil
}

// RequireEngine connects or skips the test, saying what is missing. Under CI (CI=true),
// where .ci/run starts an engine, a missing engine fails the test instead.
func RequireEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := ConnectEngine(context.Background())
	if err != nil {
		Unavailable(t, err.Error(), "apt-get install -y docker.io and start dockerd")
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// BaseImage is the base to build app/ on: $TEST_BASE_IMAGE, else the Dockerfile's default.
func BaseImage(appDir string) (string, error) {
	if base := os.Getenv(BaseImageEnv); base != "" {
		return base, nil
	}
	return DefaultBaseImage(appDir)
}

// DefaultBaseImage is the default of the Dockerfile's base image build arg.
func DefaultBaseImage(appDir string) (string, error) {
	f, err := os.Open(filepath.Join(appDir, "Dockerfile"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	parsed, err := parser.Parse(f)
	if err != nil {
		return "", err
	}
	for _, n := range parsed.AST.Children {
		if strings.EqualFold(n.Value, "ARG") && n.Next != nil {
			if name, value, ok := strings.Cut(n.Next.Value, "="); ok && name == site.BaseImageArg {
				return value, nil
			}
		}
	}
	return "", fmt.Errorf("%s/Dockerfile declares no default for ARG %s", appDir, site.BaseImageArg)
}

// AppBuild is one build of the app/ context.
type AppBuild struct {
	Dir, Tag, Base string
	// NoCache builds a distinct image (new layer timestamps) instead of reusing a cached one.
	NoCache bool
}

// BuildApp builds the context as the stack does by default (the engine's own platform, the
// base build arg), tags it, and returns the image ID. It leaves only the tagged image and its
// ancestors: the images it made for the config-check stage, or for a build that failed, go.
// A failed build's error ends with the output of the step that failed.
func (e *Engine) BuildApp(ctx context.Context, b AppBuild) (string, error) {
	appDir, tag, base := b.Dir, b.Tag, b.Base
	excludes, err := dockerignore(appDir)
	if err != nil {
		return "", err
	}
	// As the docker CLI does: the Dockerfile and .dockerignore are always sent.
	excludes = append(excludes, "!Dockerfile", "!.dockerignore")
	tarball, err := archive.TarWithOptions(appDir, &archive.TarOptions{ExcludePatterns: excludes})
	if err != nil {
		return "", err
	}
	defer tarball.Close()
	server, err := e.ServerVersion(ctx)
	if err != nil {
		return "", err
	}
	// BuildKit sets BUILDPLATFORM itself; the classic builder does not (engine 20.10).
	buildPlatform := server.Os + "/" + server.Arch
	before, err := e.imageIDs(ctx) // stack.go
	if err != nil {
		return "", err
	}
	resp, err := e.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:        []string{tag},
		NoCache:     b.NoCache,
		BuildArgs:   map[string]*string{site.BaseImageArg: &base, BuildPlatformArg: &buildPlatform},
		Remove:      true,
		ForceRemove: true,
		// The classic builder: the engine API offers BuildKit only through a session.
		Version: build.BuilderV1,
	})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out buildOutput
	buildErr := jsonmessage.DisplayJSONMessagesStream(resp.Body, &out, 0, false, nil)
	var id string
	if buildErr == nil {
		var inspect image.InspectResponse
		if inspect, buildErr = e.ImageInspect(ctx, tag); buildErr == nil {
			id = inspect.ID
		}
	}
	e.removeStepImages(ctx, out.steps(), before, id)
	if buildErr != nil {
		return "", fmt.Errorf("building %s on %s: %w\n%s", appDir, base, buildErr, out.lastStep())
	}
	return id, nil
}

// BuildPlatformArg is the build arg the Dockerfile's config-check stage runs on.
const BuildPlatformArg = "BUILDPLATFORM"

// removeStepImages removes the images a classic build made (steps, the short IDs it printed
// for steps it did not take from the cache) that were not there before it, except keep and
// its ancestors; newest first, so each goes before its parent.
func (e *Engine) removeStepImages(ctx context.Context, steps []string, before map[string]bool, keep string) {
	kept := map[string]bool{}
	if keep != "" {
		if history, err := e.ImageHistory(ctx, keep); err == nil {
			for _, h := range history {
				kept[h.ID] = true
			}
		}
	}
	for _, short := range slices.Backward(steps) {
		inspect, err := e.ImageInspect(ctx, short)
		if err != nil || before[inspect.ID] || kept[inspect.ID] || len(inspect.RepoTags) > 0 {
			continue
		}
		_, _ = e.ImageRemove(ctx, inspect.ID, image.RemoveOptions{PruneChildren: true})
	}
}

// buildOutput is the text a classic build prints.
type buildOutput struct{ strings.Builder }

// stepImage is the line with which the classic builder names the image a step left.
var stepImage = regexp.MustCompile(`^ ---> ([0-9a-f]{12})$`)

// steps is the short IDs of the images the build's steps made, in order; an image taken from
// the cache (the line before says "Using cache") is not one of them.
func (o *buildOutput) steps() []string {
	var ids []string
	lines := strings.Split(o.String(), "\n")
	for i, line := range lines {
		if m := stepImage.FindStringSubmatch(line); m != nil && (i == 0 || !strings.HasSuffix(lines[i-1], "Using cache")) {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// colour is the escape with which the classic builder colours what a step wrote to stderr.
var colour = regexp.MustCompile("\x1b\\[[0-9;]*m")

// lastStep is the output from the last step's line on: for a failed build, what failed.
func (o *buildOutput) lastStep() string {
	text := colour.ReplaceAllString(o.String(), "")
	if i := strings.LastIndex(text, "\nStep "); i >= 0 {
		text = text[i+1:]
	}
	return strings.TrimSpace(text)
}

func dockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// HardenedContainer is the site's hardened runtime for img, its port published on a free
// port of 127.0.0.1, the image's healthcheck run every HealthCheckEvery.
func HardenedContainer(img string) (*container.Config, *container.HostConfig) {
	cfg, hostCfg := engine.Hardened.Container(img, nat.PortBinding{HostIP: "127.0.0.1"})
	cfg.Healthcheck.Interval = HealthCheckEvery
	return cfg, hostCfg
}

// HealthCheckEvery paces the healthcheck of the containers the tests start, as the
// preflight paces its throwaway container's: at the image's own pace a test would wait that
// long to see the first check pass.
const HealthCheckEvery = 100 * time.Millisecond

// RunHardened starts img with the stack's runtime settings and returns the container ID and
// the base URL it serves on. The container is removed when the test ends.
func (e *Engine) RunHardened(t testing.TB, img string) (id, baseURL string) {
	t.Helper()
	cfg, hostCfg := HardenedContainer(img)
	id, baseURL, err := e.Start(context.Background(), cfg, hostCfg)
	if id != "" {
		t.Cleanup(func() { e.RemoveContainer(id) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return id, baseURL
}

// Start creates and starts a container and returns its ID and the URL of its first
// published port. On error the ID is still returned when the container was created.
func (e *Engine) Start(ctx context.Context, cfg *container.Config, hostCfg *container.HostConfig) (id, baseURL string, err error) {
	created, err := e.ContainerCreate(ctx, cfg, hostCfg, nil, nil, "")
	if err != nil {
		return "", "", err
	}
	if err := e.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return created.ID, "", err
	}
	for port := range cfg.ExposedPorts {
		baseURL, err = e.PublishedURL(ctx, created.ID, port.Int())
		return created.ID, baseURL, err
	}
	return created.ID, "", nil
}

// PublishedURL is http://host:port/ where the container's port is published.
func (e *Engine) PublishedURL(ctx context.Context, id string, containerPort int) (string, error) {
	inspect, err := e.ContainerInspect(ctx, id)
	if err != nil {
		return "", err
	}
	bindings := inspect.NetworkSettings.Ports[nat.Port(fmt.Sprintf("%d/tcp", containerPort))]
	if len(bindings) == 0 {
		return "", fmt.Errorf("container %.12s publishes no port for %d", id, containerPort)
	}
	return fmt.Sprintf("http://%s:%s/", bindings[0].HostIP, bindings[0].HostPort), nil
}

// WaitHealthy polls the container's health every 50 ms until it is healthy, and returns
// how long that took from the call.
func (e *Engine) WaitHealthy(ctx context.Context, id string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		inspect, err := e.ContainerInspect(ctx, id)
		if err != nil {
			return 0, err
		}
		if !inspect.State.Running {
			return 0, fmt.Errorf("container %.12s is not running: %s", id, inspect.State.Status)
		}
		if h := inspect.State.Health; h != nil && h.Status == container.Healthy {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("container %.12s not healthy after %s: %+v", id, limit, inspect.State.Health)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RemoveContainer force-removes a container; it is gone afterwards or was never there.
func (e *Engine) RemoveContainer(id string) {
	_ = e.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true, RemoveVolumes: true})
}

// RemoveImage removes a tag (and the image once no tag is left).
func (e *Engine) RemoveImage(ref string) {
	_, _ = e.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
}

// Exec runs cmd in a running container as its user and returns the exit code and output.
func (e *Engine) Exec(ctx context.Context, id string, cmd ...string) (int, string, error) {
	created, err := e.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, "", err
	}
	attach, err := e.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return 0, "", err
	}
	defer attach.Close()
	var out strings.Builder
	if _, err := stdcopy.StdCopy(&out, &out, attach.Reader); err != nil {
		return 0, "", err
	}
	inspect, err := e.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return 0, "", err
	}
	return inspect.ExitCode, out.String(), nil
}

// Push pushes ref with the given credentials (nil: none) and returns the manifest digest
// the engine reports.
func (e *Engine) Push(ctx context.Context, ref string, auth *registry.AuthConfig) (string, error) {
	opts := image.PushOptions{}
	if auth != nil {
		encoded, err := registry.EncodeAuthConfig(*auth)
		if err != nil {
			return "", err
		}
		opts.RegistryAuth = encoded
	} else {
		// The engine requires the header; an empty JSON object means no credentials.
		opts.RegistryAuth = "e30="
	}
	body, err := e.ImagePush(ctx, ref, opts)
	if err != nil {
		return "", err
	}
	defer body.Close()
	var digest string
	err = jsonmessage.DisplayJSONMessagesStream(body, io.Discard, 0, false, func(msg jsonmessage.JSONMessage) {
		if msg.Aux != nil {
			var aux struct{ Digest string }
			if jsonErr := json.Unmarshal(*msg.Aux, &aux); jsonErr == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
	})
	if err != nil {
		return "", err
	}
	if digest == "" {
		return "", fmt.Errorf("push of %s reported no digest", ref)
	}
	return digest, nil
}

// Pull pulls ref with the given credentials.
func (e *Engine) Pull(ctx context.Context, ref string, auth registry.AuthConfig) error {
	return e.PullPlatform(ctx, ref, "", auth)
}

// PullPlatform is Pull of platform's image of an index ("" for the engine's own).
func (e *Engine) PullPlatform(ctx context.Context, ref, platform string, auth registry.AuthConfig) error {
	encoded, err := registry.EncodeAuthConfig(auth)
	if err != nil {
		return err
	}
	body, err := e.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: encoded, Platform: platform})
	if err != nil {
		return err
	}
	defer body.Close()
	return jsonmessage.DisplayJSONMessagesStream(body, io.Discard, 0, false, nil)
}

// AddedBytes returns the bytes the layers of img add over base, and img's total size.
func (e *Engine) AddedBytes(ctx context.Context, img, base string) (added, total int64, err error) {
	imgHistory, err := e.ImageHistory(ctx, img)
	if err != nil {
		return 0, 0, err
	}
	baseHistory, err := e.ImageHistory(ctx, base)
	if err != nil {
		return 0, 0, err
	}
	// History is newest first; the entries beyond the base's are the project's.
	for _, layer := range imgHistory[:len(imgHistory)-len(baseHistory)] {
		added += layer.Size
	}
	inspect, err := e.ImageInspect(ctx, img)
	if err != nil {
		return 0, 0, err
	}
	return added, inspect.Size, nil
}

// SavedFiles returns the concatenated content of `docker save` of ref: its metadata and
// every file of every layer, nested archives unpacked.
func (e *Engine) SavedFiles(ctx context.Context, ref string) ([]byte, error) {
	saved, err := e.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, err
	}
	defer saved.Close()
	var out bytes.Buffer
	err = appendTarFiles(&out, saved, 0)
	return out.Bytes(), err
}

func appendTarFiles(out *bytes.Buffer, r io.Reader, depth int) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			out.WriteString(hdr.Name + " -> " + hdr.Linkname + "\n")
			continue
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		// Layers are archives inside the archive.
		if depth < 2 && isTar(content) {
			if err := appendTarFiles(out, bytes.NewReader(content), depth+1); err != nil {
				return err
			}
			continue
		}
		out.Write(content)
	}
}

func isTar(content []byte) bool {
	_, err := tar.NewReader(bytes.NewReader(content)).Next()
	return err == nil
}
