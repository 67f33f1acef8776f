//go:build linux

package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"golang.org/x/sys/unix"
)

// InsideArgv is argv run inside the Hub's namespaces (network and mount), in the current
// working directory: nsenter's prefix, then argv.
func (h *DockerHub) InsideArgv(argv ...string) []string {
	wd, err := os.Getwd()
	if err != nil {
		wd = "/"
	}
	return h.insideArgvIn(wd, argv...)
}

// insideArgvIn is InsideArgv in directory wd: entering a mount namespace moves to its
// root, so nsenter is told where to be.
func (h *DockerHub) insideArgvIn(wd string, argv ...string) []string {
	return append([]string{"nsenter",
		fmt.Sprintf("--mount=/proc/%d/ns/mnt", h.holder.pid()),
		"--net=" + h.netnsPath,
		"--wd=" + wd,
		"--"}, argv...)
}

// Command is exec.Command(name, args…) run inside the Hub's namespaces: there Hub's names
// resolve to the test Hub, whose CA the system bundle holds.
func (h *DockerHub) Command(name string, args ...string) *exec.Cmd {
	argv := h.InsideArgv(append([]string{name}, args...)...)
	return exec.Command(argv[0], argv[1:]...)
}

// Wrap returns cmd (not yet started) run inside the Hub's namespaces, with its directory,
// environment, standard streams and process attributes.
func (h *DockerHub) Wrap(cmd *exec.Cmd) *exec.Cmd {
	wd := cmd.Dir
	if wd == "" {
		wd, _ = os.Getwd()
	}
	argv := h.insideArgvIn(wd, append([]string{cmd.Path}, cmd.Args[1:]...)...)
	wrapped := exec.Command(argv[0], argv[1:]...)
	wrapped.Dir, wrapped.Env = cmd.Dir, cmd.Env
	wrapped.Stdin, wrapped.Stdout, wrapped.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	wrapped.ExtraFiles, wrapped.SysProcAttr = cmd.ExtraFiles, cmd.SysProcAttr
	return wrapped
}

// PulumiRoot makes (once) a directory ROOT with an executable ROOT/bin/pulumi that runs
// the real pulumi, the one on PATH now, inside the Hub's namespaces: give it to
// auto.NewPulumiCommand as Root (PulumiCommand does), or put ROOT/bin first on PATH. The
// CLI, the language host, the plugins and the program then all run inside.
func (h *DockerHub) PulumiRoot() (string, error) {
	root := filepath.Join(h.dir, "pulumi")
	wrapper := filepath.Join(root, "bin", "pulumi")
	if _, err := os.Stat(wrapper); err == nil {
		return root, nil
	}
	real, err := exec.LookPath("pulumi")
	if err != nil {
		return "", fmt.Errorf("no pulumi on PATH to wrap (eval \"$(bash ../shared/pulumi/install)\"): %w", err)
	}
	if real, err = filepath.Abs(real); err != nil {
		return "", err
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return "", err
	}
	// As insideArgvIn, the directory the Automation API starts it in passed on.
	script := fmt.Sprintf("#!/bin/sh\n# The real pulumi inside the test Docker Hub's namespaces (testbed.DockerHub).\n"+
		"exec %s %s %s --wd=\"$(pwd -P)\" -- %s \"$@\"\n",
		shellQuote(nsenter), shellQuote(fmt.Sprintf("--mount=/proc/%d/ns/mnt", h.holder.pid())),
		shellQuote("--net="+h.netnsPath), shellQuote(real))
	if err := os.MkdirAll(filepath.Dir(wrapper), 0o755); err != nil {
		return "", err
	}
	return root, os.WriteFile(wrapper, []byte(script), 0o755)
}

// PulumiCommand is the Automation API's command for the wrapped pulumi (see PulumiRoot).
func (h *DockerHub) PulumiCommand() (auto.PulumiCommand, error) {
	root, err := h.PulumiRoot()
	if err != nil {
		return nil, err
	}
	return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// DialContext connects to addr inside the Hub's network namespace, from this process:
// Hub's names (and localhost) resolve as they do inside, other hosts must be addresses.
func (h *DockerHub) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip, ok := hubHosts[host]; ok {
		addr = net.JoinHostPort(ip, port)
	}
	var conn net.Conn
	err = inNetns(h.netnsPath, func() (err error) {
		var d net.Dialer
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPClient is a client that connects inside the Hub's network namespace (DialContext)
// and trusts the Hub's CA only: it reaches https://registry-1.docker.io and
// https://auth.docker.io of the test Hub, and a site published inside.
func (h *DockerHub) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:     h.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: h.CA.Pool(), MinVersion: tls.VersionTLS12},
		},
	}
}

// Forward makes insideAddr (e.g. 127.0.0.1:8080, a port the dedicated engine publishes)
// reachable from the host: it listens on a free port of the host's 127.0.0.1 and relays
// each connection to insideAddr inside the network namespace. The other direction,
// a host address reachable from inside, is listenInNetns with ForwardFrom.
func (h *DockerHub) Forward(insideAddr string) (*Forwarder, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return ForwardFunc(l, func() (net.Conn, error) { return h.DialContext(context.Background(), "tcp", insideAddr) }), nil
}

// teardown stops what start started, in reverse, whether start finished or not.
func (h *DockerHub) teardown(t testing.TB) {
	began := time.Now()
	if t.Failed() { // the servers' own account, before it goes with the directory
		for _, p := range []*hubProcess{h.dockerd, h.registry, h.holder} {
			if tail := p.logTailOrEmpty(); tail != "" {
				t.Log(tail)
			}
		}
	}
	if h.Engine != nil {
		h.Engine.Close()
	}
	h.dockerd.stop(30*time.Second, t.Logf)
	h.registry.stop(10*time.Second, t.Logf)
	if h.tokenSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.tokenSrv.Shutdown(ctx)
		cancel()
		_ = h.tokenSrv.Close()
	}
	h.holder.stop(5*time.Second, t.Logf)
	// What dockerd started (containerd, shims, containers, docker-proxy) or a test ran
	// inside and left running.
	for _, p := range h.leftoverProcesses() {
		t.Logf("docker hub teardown: killing leftover pid %d: %s", p.pid, p.cmdline)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	h.waitGone(10 * time.Second)
	for _, err := range h.removeResources(t.Logf) {
		t.Errorf("docker hub teardown: %v", err)
	}
	t.Logf("docker hub torn down in %s", time.Since(began).Round(time.Millisecond))
}

// asSwarm is the Hub as far as the swarm's process search needs: its directory and its
// network namespace.
func (h *DockerHub) asSwarm() *Swarm {
	s := &Swarm{dir: h.dir, nsInodes: map[uint64]bool{}}
	if h.nsInode != 0 {
		s.nsInodes[h.nsInode] = true
	}
	return s
}

func (h *DockerHub) leftoverProcesses() []swarmProcess { return h.asSwarm().leftoverProcesses() }

func (h *DockerHub) waitGone(limit time.Duration) { h.asSwarm().waitGone(limit) }

// removeResources removes what is left once no process of the Hub runs: mounts under its
// directory (none, normally: they were in its mount namespace), its network namespace and
// its directory. The host has no link, route or iptables rule of the Hub's: dockerd's
// rules are in the network namespace, gone with it.
func (h *DockerHub) removeResources(logf func(string, ...any)) []error {
	var errs []error
	if h.dir != "" {
		for _, m := range mountsUnder(h.dir) {
			logf("docker hub teardown: unmounting %s", m)
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	if h.netnsName != "" {
		if _, err := os.Stat(h.netnsPath); err == nil {
			if err := swarmRun("ip", "netns", "delete", h.netnsName); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if h.dir != "" {
		if err := os.RemoveAll(h.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// hubDirPrefix starts the name of every Hub's directory in swarmTempDir (short: the
// engine's socket is there).
const hubDirPrefix = "cnhub"

// hubNetnsName is the network namespace of the Hub of suffix.
func hubNetnsName(suffix string) string { return hubDirPrefix + suffix }

// reapStaleHubs removes the Hubs whose test process ended without its cleanup (a timeout
// panic, a kill): their processes got SIGTERM with it (Pdeathsig), the mount namespace
// went with them, but the network namespace and the directory stay. A Hub with a process
// still running is left alone.
func reapStaleHubs(t testing.TB) {
	reapStale(t, "docker hub", hubDirPrefix, func(dir, suffix string) staleRun {
		stale := &DockerHub{dir: dir, suffix: suffix, netnsName: hubNetnsName(suffix)}
		stale.netnsPath = swarmNetnsPath(stale.netnsName)
		var st syscall.Stat_t
		if syscall.Stat(stale.netnsPath, &st) == nil {
			stale.nsInode = st.Ino
		}
		return stale
	})
}
