//go:build linux

package testsupport

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
// pushed as docker.io/library/<pinned>.
type hubBase struct{ src, pinned string }

// requireHubBase finds the host engine's base for appDir before anything starts: without
// it the test is skipped (fails under CI), naming the fix.
func requireHubBase(t testing.TB, appDir string) hubBase {
	t.Helper()
	src, err := BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := DefaultBaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host, err := ConnectEngine(ctx)
	if err != nil {
		Unavailable(t, fmt.Sprintf("no host engine holding the base for the test Docker Hub: %v", err), "apt-get install -y docker.io and start dockerd")
	}
	defer host.Close()
	if _, err := host.ImageInspect(ctx, src); err != nil {
		Unavailable(t, fmt.Sprintf("no base image %s in the host engine to push to the test Docker Hub (%v)", src, err),
			"export "+BaseImageEnv+"=$(scripts/standin-base.sh)")
	}
	return hubBase{src: src, pinned: pinned}
}

// pushBase pushes the host engine's base to the Hub as docker.io/library/<pinned>, as the
// Hub's library user, and leaves no image in the dedicated engine: builds pull their base
// from the Hub.
func (h *DockerHub) pushBase(ctx context.Context, base hubBase) error {
	host, err := ConnectEngine(ctx)
	if err != nil {
		return err
	}
	defer host.Close()
	target := "docker.io/library/" + base.pinned
	if err := (SwarmNode{Name: "the Hub's engine", Engine: h.Engine}).LoadImageFrom(ctx, host, base.src); err != nil {
		return err
	}
	defer h.Engine.RemoveImage(base.src)
	if err := h.Engine.ImageTag(ctx, base.src, target); err != nil {
		return err
	}
	defer h.Engine.RemoveImage(target)
	auth := HubAuth(hubLibraryUser, h.library)
	if _, err := h.Engine.Push(ctx, target, &auth); err != nil {
		return fmt.Errorf("pushing the base %s as %s: %w", base.src, target, err)
	}
	h.BaseImage = target
	return nil
}
