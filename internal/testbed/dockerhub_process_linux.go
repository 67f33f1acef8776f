//go:build linux

package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// hubProcess is a child process of the Hub (the namespace holder, the registry, dockerd)
// with its log file.
type hubProcess struct {
	cmd     *exec.Cmd
	log     string
	exited  chan struct{} // closed when it has exited
	waitErr error         // its exit status, once exited is closed
}

// startHubProcess starts argv with its output to logPath, in a process group of its own (a
// ^C reaches the test, which stops it) and SIGTERM if the test process dies first.
func startHubProcess(logPath string, argv ...string) (*hubProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &hubProcess{cmd: exec.Command(argv[0], argv[1:]...), log: logPath, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Pdeathsig belongs to the thread that forks: start and wait on a thread that nothing
	// else ends while the child runs (as SwarmNode.startEngine does).
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return p, nil
}

func (p *hubProcess) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and, after grace, SIGKILL; it returns once the process has exited.
func (p *hubProcess) stop(grace time.Duration, logf func(string, ...any)) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		logf("docker hub teardown: %s (pid %d) still running %s after SIGTERM: killing it", p.cmd.Args[0], p.pid(), grace)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// logTailOrEmpty is logTail of a process that may not have been started.
func (p *hubProcess) logTailOrEmpty() string {
	if p == nil {
		return ""
	}
	return p.logTail()
}

func (p *hubProcess) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\n" + filepath.Base(p.log) + ":\n" + string(b)
}

// startEngine starts the dedicated dockerd inside both namespaces and connects to it.
func (h *DockerHub) startEngine(ctx context.Context) error {
	config := filepath.Join(h.dir, "daemon.json")
	// An empty configuration: the host's /etc/docker/daemon.json is the host engine's.
	if err := os.WriteFile(config, []byte("{}\n"), 0o600); err != nil {
		return err
	}
	// The default bridge lives in the network namespace, apart from the host's docker0; a
	// subnet the host does not use keeps its addresses unambiguous in logs.
	prefix, err := swarmSubnet()
	if err != nil {
		return err
	}
	sock := filepath.Join(h.dir, "d.sock")
	h.Socket = "unix://" + sock
	argv := h.InsideArgv("dockerd",
		"--config-file", config,
		"--data-root", filepath.Join(h.dir, "data"),
		"--exec-root", filepath.Join(h.dir, "exec"),
		"--pidfile", filepath.Join(h.dir, "dockerd.pid"),
		"--host", h.Socket,
		"--bip", prefix+"1/24",
		// Only matters if a system containerd is running (then shared): keep apart from it.
		"--containerd-namespace", h.netnsName,
		"--containerd-plugins-namespace", h.netnsName+"-plugins",
		"--log-level", "warn",
	)
	d, err := startHubProcess(filepath.Join(h.dir, "dockerd.log"), argv...)
	if err != nil {
		return err
	}
	h.dockerd = d
	e, err := waitEngine(ctx, h.Socket, d.exited, func() error { return d.waitErr }, d.logTail)
	if err != nil {
		return fmt.Errorf("the Hub's dockerd: %w", err)
	}
	h.Engine = e
	return nil
}

// hubBase is the base StartDockerHub pushes for HubOptions.AppDir: src in the host engine,
// pushed as docker.io/library/<pinned>; with arm64, an index of src and arm64.
type hubBase struct{ src, arm64, pinned string }

// Arm64BaseEnv names the host engine's arm64 stand-in base, which HubOptions.Arm64 serves
// beside TEST_BASE_IMAGE.
const Arm64BaseEnv = "TEST_BASE_IMAGE_ARM64"

// requireHubBase finds the host engine's base for appDir (and, with arm64, the arm64
// stand-in) before anything starts: without it the test is skipped (fails under CI),
// naming the fix.
func requireHubBase(t testing.TB, appDir string, arm64 bool) hubBase {
	t.Helper()
	src, err := BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := DefaultBaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	base := hubBase{src: src, pinned: pinned}
	wanted := map[string]string{src: "export " + BaseImageEnv + "=$(scripts/standin-base.sh)"}
	if arm64 {
		base.arm64 = os.Getenv(Arm64BaseEnv)
		if base.arm64 == "" {
			Unavailable(t, "no "+Arm64BaseEnv+" for the test Docker Hub's arm64 base",
				"dpkg --add-architecture arm64 && apt-get update && export "+Arm64BaseEnv+"=$(scripts/standin-base.sh custom-nginx-test/nginx-standin:arm64 arm64)")
		}
		wanted[base.arm64] = "export " + Arm64BaseEnv + "=$(scripts/standin-base.sh custom-nginx-test/nginx-standin:arm64 arm64)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host, err := ConnectEngine(ctx)
	if err != nil {
		Unavailable(t, fmt.Sprintf("no host engine holding the base for the test Docker Hub: %v", err), "apt-get install -y docker.io and start dockerd")
	}
	defer host.Close()
	for img, fix := range wanted {
		if _, err := host.ImageInspect(ctx, img); err != nil {
			Unavailable(t, fmt.Sprintf("no base image %s in the host engine to push to the test Docker Hub (%v)", img, err), fix)
		}
	}
	return base
}

// pushBase pushes the host engine's base to the Hub as docker.io/library/<pinned>, as the
// Hub's library user, and leaves no image in the dedicated engine: builds pull their base
// from the Hub. With an arm64 base, each is pushed under a tag of its own and the pinned tag
// is an index of both, read back from the registry with their platforms.
func (h *DockerHub) pushBase(ctx context.Context, base hubBase) error {
	target := "docker.io/library/" + base.pinned
	if base.arm64 == "" {
		if _, err := h.pushFromHost(ctx, base.src, target); err != nil {
			return err
		}
		h.BaseImage = target
		return nil
	}
	ref, err := name.ParseReference(target)
	if err != nil {
		return err
	}
	var variants []mutate.IndexAddendum
	for i, src := range []string{base.src, base.arm64} {
		digest, err := h.pushFromHost(ctx, src, fmt.Sprintf("%s-variant%d", target, i))
		if err != nil {
			return err
		}
		variant, err := h.libraryVariant(ctx, ref.Context().Digest(digest))
		if err != nil {
			return err
		}
		variants = append(variants, variant)
	}
	index := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, variants...), types.OCIImageIndex)
	if err := remote.WriteIndex(ref, index, append(h.libraryRemote(), remote.WithContext(ctx))...); err != nil {
		return fmt.Errorf("writing the base's index %s: %w", target, err)
	}
	h.BaseImage = target
	return nil
}

// pushFromHost copies src from the host engine into the Hub's engine, pushes it there as
// target and removes both names again; it returns the digest pushed.
func (h *DockerHub) pushFromHost(ctx context.Context, src, target string) (string, error) {
	host, err := ConnectEngine(ctx)
	if err != nil {
		return "", err
	}
	defer host.Close()
	if err := (SwarmNode{Name: "the Hub's engine", Engine: h.Engine}).LoadImageFrom(ctx, host, src); err != nil {
		return "", err
	}
	defer h.Engine.RemoveImage(src)
	if err := h.Engine.ImageTag(ctx, src, target); err != nil {
		return "", err
	}
	defer h.Engine.RemoveImage(target)
	auth := HubAuth(hubLibraryUser, h.library)
	digest, err := h.Engine.Push(ctx, target, &auth)
	if err != nil {
		return "", fmt.Errorf("pushing the base %s as %s: %w", src, target, err)
	}
	return digest, nil
}

// libraryRemote are the options of go-containerregistry's calls to the Hub as its library
// user, through the Hub's namespace and trust.
func (h *DockerHub) libraryRemote() []remote.Option {
	return []remote.Option{remote.WithTransport(h.HTTPClient().Transport),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: hubLibraryUser, Password: h.library}))}
}

// libraryVariant is the image at ref as an index's entry, with the platform its config
// names.
func (h *DockerHub) libraryVariant(ctx context.Context, ref name.Digest) (mutate.IndexAddendum, error) {
	img, err := remote.Image(ref, append(h.libraryRemote(), remote.WithContext(ctx))...)
	if err != nil {
		return mutate.IndexAddendum{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return mutate.IndexAddendum{}, err
	}
	return mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
		Platform: &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant},
	}}, nil
}
