//go:build linux

package testbed

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/jsonmessage"
	"golang.org/x/sys/unix"
)

// SwarmNode is one Docker engine of a Swarm: a dockerd of its own in a network namespace
// of its own, attached to the test's bridge.
type SwarmNode struct {
	Name   string  // network namespace name, also the node's hostname in the swarm
	Addr   string  // its address on the bridge, e.g. 10.213.7.2: reachable from the host
	Socket string  // DOCKER_HOST value of its engine: unix:///tmp/…/d.sock
	Engine *Engine // connected client of that engine
	ID     string  // swarm node ID

	dir     string // data, exec root, socket and log of its dockerd
	netns   string // /var/run/netns/Name
	hub     *DockerHub
	cmd     *exec.Cmd
	exited  chan struct{} // closed when dockerd has exited
	waitErr error         // dockerd's exit status, once exited is closed
}

// Swarm is a real Docker Swarm of two engines on this host, each in its own network
// namespace on a private bridge: the first is the manager, the second a worker. Every
// node reaches the test registry at the address the host does (RegistryAddr, on its own
// 127.0.0.1), so one image reference works on the host and on every node. With a test
// Docker Hub, every node reaches it under Hub's names, trusting its CA, as the Hub's own
// namespaces do, and the Hub's network namespace is on the bridge too (HubAddr): what
// runs inside it reaches the nodes.
type Swarm struct {
	Nodes        []SwarmNode // Nodes[0] is the manager
	Manager      SwarmNode
	RegistryAddr string        // the registry's 127.0.0.1:port, the same on the host and on every node
	Bridge       string        // host bridge the nodes are attached to
	BridgeAddr   string        // the host's address on it, e.g. 10.213.7.1
	HubAddr      string        // with a Hub, its network namespace's address on the bridge
	Subnet       string        // e.g. 10.213.7.0/24; exists only while the swarm does
	StartTime    time.Duration // how long StartSwarm took

	dir       string
	suffix    string   // names what the swarm makes on the host: see swarmBridgeName and the like
	prefix    string   // of Subnet, with its trailing dot: 10.213.7.
	veths     []string // host ends
	iptRule   []string // the FORWARD rule added, without -I/-D
	relays    []*Forwarder
	nsInodes  map[uint64]bool
	startedAt time.Time
}

// SwarmNodes is how many engines StartSwarm starts.
const SwarmNodes = 2

// SwarmOptions say what the nodes reach besides each other.
type SwarmOptions struct {
	Registry *Registry  // reached by every node at Registry.Addr
	Hub      *DockerHub // reached by every node as Docker Hub
}

// StartSwarm builds a two-node swarm and tears it down when the test ends, whether it
// passes or not. It needs root and ip, nsenter, unshare, iptables and dockerd: without
// them the test is skipped (fails under CI).
func StartSwarm(t testing.TB, opts SwarmOptions) *Swarm {
	t.Helper()
	requireSwarmTools(t)
	s := &Swarm{startedAt: time.Now(), nsInodes: map[uint64]bool{}}
	t.Cleanup(func() { s.teardown(t) })
	if err := s.start(t, opts); err != nil {
		t.Fatalf("starting the swarm: %v", err)
	}
	s.StartTime = time.Since(s.startedAt)
	t.Logf("swarm of %d nodes on %s (bridge %s) ready in %s", len(s.Nodes), s.Subnet, s.Bridge, s.StartTime.Round(time.Millisecond))
	return s
}

func requireSwarmTools(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "a swarm of network namespaces needs root", "run the tests as root")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"ip", "iproute2"}, {"nsenter", "util-linux"}, {"unshare", "util-linux"},
		{"iptables", "iptables"}, {"dockerd", "docker.io"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			Unavailable(t, "no "+tool.bin+" for the swarm test", "apt-get install -y "+tool.pkg)
		}
	}
}

// start builds the swarm step by step; whatever a step made before an error, teardown
// removes.
func (s *Swarm) start(t testing.TB, opts SwarmOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix, err := swarmSuffix()
	if err != nil {
		return err
	}
	s.suffix = suffix
	reapStaleSwarms(t)
	if err := s.makeDir(); err != nil {
		return err
	}
	if err := s.makeBridge(); err != nil {
		return err
	}
	for i := range SwarmNodes {
		if err := s.addNode(i, opts); err != nil {
			return err
		}
	}
	if opts.Registry != nil {
		s.RegistryAddr = opts.Registry.Addr
	}
	if opts.Hub != nil {
		if err := s.attachHub(opts.Hub); err != nil {
			return err
		}
	}
	if err := s.startEngines(ctx); err != nil {
		return err
	}
	t.Logf("swarm: %d engines up after %s", len(s.Nodes), time.Since(s.startedAt).Round(time.Millisecond))
	if err := s.form(ctx); err != nil {
		return err
	}
	return s.waitReady(ctx)
}

// makeDir makes the swarm's directory and writes into it who made it: a later run
// removes what a run killed before its cleanup (a test binary's timeout panic runs none)
// left behind.
func (s *Swarm) makeDir() error {
	dir, err := os.MkdirTemp(swarmTempDir, swarmDirPrefix)
	if err != nil {
		return err
	}
	s.dir = dir
	return writeOwnerFile(s.dir, os.Getpid(), s.suffix)
}

// makeBridge picks a free subnet and makes the bridge on it, with traffic between its
// ports let past the host dockerd's FORWARD policy DROP.
func (s *Swarm) makeBridge() error {
	prefix, err := swarmSubnet()
	if err != nil {
		return err
	}
	s.prefix = prefix
	s.Subnet = prefix + "0/24"
	s.BridgeAddr = prefix + "1"
	s.Bridge = swarmBridgeName(s.suffix)
	if err := swarmRun("ip", "link", "add", s.Bridge, "type", "bridge"); err != nil {
		s.Bridge = ""
		return err
	}
	if err := swarmRun("ip", "addr", "add", s.BridgeAddr+"/24", "dev", s.Bridge); err != nil {
		return err
	}
	if err := swarmRun("ip", "link", "set", s.Bridge, "up"); err != nil {
		return err
	}
	rule := swarmForwardRule(s.Bridge)
	if err := swarmRun("iptables", append([]string{"-w", "-I"}, rule...)...); err != nil {
		return err
	}
	s.iptRule = rule
	return nil
}

// addNode makes node i's network namespace, with a veth pair to the bridge and no default
// route, and its directory; it relays the registry's address on the node's own loopback
// to the host's, and the Hub's addresses to the Hub.
func (s *Swarm) addNode(i int, opts SwarmOptions) error {
	n := SwarmNode{
		Name: swarmNodeName(s.suffix, i),
		Addr: s.prefix + strconv.Itoa(2+i),
		dir:  filepath.Join(s.dir, strconv.Itoa(i)),
		hub:  opts.Hub,
	}
	n.netns = swarmNetnsPath(n.Name)
	n.Socket = "unix://" + filepath.Join(n.dir, "d.sock")
	if err := swarmRun("ip", "netns", "add", n.Name); err != nil {
		return err
	}
	s.Nodes = append(s.Nodes, n)
	var st syscall.Stat_t
	if err := syscall.Stat(n.netns, &st); err != nil {
		return err
	}
	s.nsInodes[st.Ino] = true
	if err := s.plug(i, n.Name, n.Addr); err != nil {
		return err
	}
	if err := swarmRun("ip", "-n", n.Name, "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	if opts.Registry != nil {
		l, err := listenInNetns(n.netns, opts.Registry.Addr)
		if err != nil {
			return fmt.Errorf("registry relay in %s: %w", n.Name, err)
		}
		s.relays = append(s.relays, ForwardFrom(l, "tcp", opts.Registry.Addr))
	}
	if opts.Hub != nil {
		relays, err := opts.Hub.RelayInto(n.netns)
		s.relays = append(s.relays, relays...)
		if err != nil {
			return fmt.Errorf("docker hub relays in %s: %w", n.Name, err)
		}
	}
	return nil
}

// plug attaches the network namespace netnsName to the bridge at addr, through veth pair
// i (eth0 inside), with no default route.
func (s *Swarm) plug(i int, netnsName, addr string) error {
	host, peer := swarmVethNames(s.suffix, i)
	if err := swarmRun("ip", "link", "add", host, "type", "veth", "peer", "name", peer); err != nil {
		return err
	}
	s.veths = append(s.veths, host)
	for _, args := range [][]string{
		{"link", "set", host, "master", s.Bridge},
		{"link", "set", host, "up"},
		{"link", "set", peer, "netns", netnsName},
		{"-n", netnsName, "link", "set", peer, "name", "eth0"},
		{"-n", netnsName, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", netnsName, "link", "set", "eth0", "up"},
	} {
		if err := swarmRun("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// attachHub plugs the Hub's network namespace into the bridge, after the nodes: the CLI
// and the program running inside it reach the nodes' engines and sites.
func (s *Swarm) attachHub(hub *DockerHub) error {
	s.HubAddr = s.prefix + strconv.Itoa(2+SwarmNodes)
	return s.plug(SwarmNodes, hub.netnsName, s.HubAddr)
}

// startEngines starts every node's engine, all together.
func (s *Swarm) startEngines(ctx context.Context) error {
	errs := make([]error, len(s.Nodes))
	var wg sync.WaitGroup
	for i := range s.Nodes {
		wg.Go(func() { errs[i] = s.Nodes[i].startEngine(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// form makes the swarm: the first node initialises it, the others join as workers.
func (s *Swarm) form(ctx context.Context) error {
	mgr := &s.Nodes[0]
	id, err := mgr.Engine.SwarmInit(ctx, swarm.InitRequest{
		ListenAddr:    mgr.Addr + ":2377",
		AdvertiseAddr: mgr.Addr + ":2377",
	})
	if err != nil {
		return fmt.Errorf("swarm init on %s: %w%s", mgr.Name, err, mgr.logTail())
	}
	mgr.ID = id
	info, err := mgr.Engine.SwarmInspect(ctx)
	if err != nil {
		return err
	}
	for i := 1; i < len(s.Nodes); i++ {
		if err := s.Nodes[i].join(ctx, mgr.Addr, info.JoinTokens.Worker); err != nil {
			return err
		}
	}
	s.Manager = *mgr
	return nil
}

// join makes the node a worker of the swarm whose manager listens at managerAddr.
func (n *SwarmNode) join(ctx context.Context, managerAddr, token string) error {
	err := n.Engine.SwarmJoin(ctx, swarm.JoinRequest{
		ListenAddr:    n.Addr + ":2377",
		AdvertiseAddr: n.Addr + ":2377",
		RemoteAddrs:   []string{managerAddr + ":2377"},
		JoinToken:     token,
	})
	if err != nil {
		return fmt.Errorf("swarm join of %s: %w%s", n.Name, err, n.logTail())
	}
	info, err := n.Engine.Info(ctx)
	if err != nil {
		return err
	}
	n.ID = info.Swarm.NodeID
	return nil
}

// waitReady waits until the manager sees every node ready.
func (s *Swarm) waitReady(ctx context.Context) error {
	var last string
	for {
		nodes, err := s.Manager.Engine.NodeList(ctx, swarm.NodeListOptions{})
		if err == nil {
			ready := 0
			var states []string
			for _, n := range nodes {
				states = append(states, fmt.Sprintf("%s:%s/%s", n.Description.Hostname, n.Spec.Role, n.Status.State))
				if n.Status.State == swarm.NodeStateReady {
					ready++
				}
			}
			if ready == len(s.Nodes) && len(nodes) == len(s.Nodes) {
				return nil
			}
			last = strings.Join(states, " ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm nodes not all ready: %s", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startEngine starts the node's dockerd in its namespace (and a UTS namespace of its own,
// so the swarm knows each node by its name) and connects to it.
func (n *SwarmNode) startEngine(ctx context.Context) error {
	config := filepath.Join(n.dir, "daemon.json")
	// An empty configuration file: the host's /etc/docker/daemon.json is the host engine's.
	if err := os.WriteFile(config, []byte("{}\n"), 0o600); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(n.dir, "dockerd.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	// nsenter, not `ip netns exec`: that one remounts /sys in a mount namespace of its own,
	// which hides the cgroup hierarchies, and dockerd then refuses to start.
	argv := []string{"unshare", "--uts", "--", "sh", "-c", `hostname "$0" && exec "$@"`, n.Name}
	if n.hub != nil {
		argv = n.hub.namesAndTrust(argv...)
	}
	n.cmd = exec.Command("nsenter", append(append([]string{"--net=" + n.netns, "--"}, argv...),
		"dockerd",
		"--config-file", config,
		"--data-root", filepath.Join(n.dir, "data"),
		"--exec-root", filepath.Join(n.dir, "exec"),
		"--pidfile", filepath.Join(n.dir, "pid"),
		"--host", n.Socket,
		// Only matters if a system containerd is running (then shared): keep the nodes apart.
		"--containerd-namespace", n.Name,
		"--containerd-plugins-namespace", n.Name+"-plugins",
		"--log-level", "warn",
	)...)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	// Its own process group (a ^C reaches the test, which stops it), and SIGTERM if the test
	// process dies before its cleanup.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Pdeathsig belongs to the thread that forks, not the process: start and wait for
	// dockerd on a thread of its own that nothing else can end while dockerd runs.
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := n.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		n.waitErr = n.cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return err
	}
	n.exited = exited

	e, err := waitEngine(ctx, n.Socket, n.exited, func() error { return n.waitErr }, n.logTail)
	if err != nil {
		return fmt.Errorf("dockerd of %s: %w", n.Name, err)
	}
	n.Engine = e
	return nil
}

func (n *SwarmNode) logTail() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "dockerd.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\ndockerd log of " + n.Name + ":\n" + string(b)
}

// NodeURL is http://ADDR:PORT/ of node on the bridge: a port the node publishes in host
// mode, as the host reaches it.
func (s *Swarm) NodeURL(node SwarmNode, port int) string {
	return "http://" + net.JoinHostPort(node.Addr, strconv.Itoa(port)) + "/"
}

// LoadImageFrom copies ref from src into the node's engine, as docker save | docker load.
func (n SwarmNode) LoadImageFrom(ctx context.Context, src *Engine, ref string) error {
	saved, err := src.ImageSave(ctx, []string{ref})
	if err != nil {
		return err
	}
	defer saved.Close()
	resp, err := n.Engine.ImageLoad(ctx, saved)
	if err != nil {
		return fmt.Errorf("loading %s into %s: %w", ref, n.Name, err)
	}
	defer resp.Body.Close()
	if resp.JSON {
		err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return fmt.Errorf("loading %s into %s: %w", ref, n.Name, err)
	}
	return nil
}

// teardown undoes whatever start did, in reverse, whether start finished or not.
func (s *Swarm) teardown(t testing.TB) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	problem := func(format string, args ...any) { t.Errorf("swarm teardown: "+format, args...) }
	if t.Failed() { // the engines' own account, before it goes with their directories
		for _, n := range s.Nodes {
			if tail := n.logTail(); tail != "" {
				t.Log(tail)
			}
		}
	}

	// Leave the swarm, workers first.
	for i := len(s.Nodes) - 1; i >= 0; i-- {
		n := &s.Nodes[i]
		if n.Engine == nil {
			continue
		}
		if err := n.Engine.SwarmLeave(ctx, true); err != nil && n.ID != "" {
			t.Logf("swarm teardown: %s leaving the swarm: %v", n.Name, err)
		}
		n.Engine.Close()
	}
	// Stop the engines: SIGTERM, then SIGKILL after a grace period.
	var wg sync.WaitGroup
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.exited == nil {
			continue
		}
		wg.Go(func() {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.exited:
			case <-time.After(30 * time.Second):
				t.Logf("swarm teardown: dockerd of %s (pid %d) still running 30s after SIGTERM: killing it", n.Name, n.cmd.Process.Pid)
				_ = n.cmd.Process.Kill()
				<-n.exited
			}
		})
	}
	wg.Wait()
	// Anything still running that the engines started (containerd, shims, containers,
	// docker-proxy): what runs in our namespaces or names our directory, and its children.
	for _, p := range s.leftoverProcesses() {
		t.Logf("swarm teardown: killing leftover pid %d: %s", p.pid, p.cmdline)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	s.waitGone(10 * time.Second)
	for _, r := range s.relays {
		r.Close()
	}
	for _, err := range s.removeResources(t.Logf) {
		problem("%v", err)
	}
	t.Logf("swarm torn down in %s", time.Since(began).Round(time.Millisecond))
}

// removeResources removes what is left once no process of the swarm runs: mounts under
// its directory, its namespaces, veths, bridge, FORWARD rule and directory.
func (s *Swarm) removeResources(logf func(string, ...any)) []error {
	var errs []error
	// What dockerd left mounted under its directories (overlay layers, namespace files).
	if s.dir != "" {
		for _, m := range mountsUnder(s.dir) {
			logf("swarm teardown: unmounting %s, left by dockerd", m)
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	for _, n := range s.Nodes {
		if err := swarmRun("ip", "netns", "delete", n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range s.veths { // normally gone with their peers' namespaces
		// The kernel removes them after the namespace, in the background: one may go between
		// the look and the delete.
		if swarmLinkExists(v) {
			if err := swarmRun("ip", "link", "delete", v); err != nil && swarmLinkExists(v) {
				errs = append(errs, err)
			}
		}
	}
	if s.Bridge != "" && swarmLinkExists(s.Bridge) {
		if err := swarmRun("ip", "link", "delete", s.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if s.iptRule != nil {
		if err := swarmRun("iptables", append([]string{"-w", "-D"}, s.iptRule...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// What a swarm makes on the host is named after its suffix, by these functions alone:
// start makes each thing under its name, and reapStaleSwarms finds a dead run's leftovers
// under the same names.
const (
	swarmTempDir   = "/tmp" // short: socket paths are limited to 108 bytes
	swarmDirPrefix = "cnsw" // starts the name of every swarm's directory in swarmTempDir
	swarmOwnerFile = "owner"
)

// swarmBridgeName is the host bridge the nodes are attached to.
func swarmBridgeName(suffix string) string { return "cnb" + suffix }

// swarmNodeName is node i's network namespace and hostname.
func swarmNodeName(suffix string, i int) string { return fmt.Sprintf("cnsw%s-%d", suffix, i) }

// swarmNetnsPath is the file of the network namespace ip netns named name.
func swarmNetnsPath(name string) string { return "/var/run/netns/" + name }

// swarmVethNames are the host end and the node end (renamed eth0 in it) of node i's veth.
func swarmVethNames(suffix string, i int) (host, peer string) {
	return fmt.Sprintf("cnv%s%d", suffix, i), fmt.Sprintf("cnp%s%d", suffix, i)
}

// swarmForwardRule is the FORWARD rule that lets traffic pass between the bridge's ports,
// without -I, -C or -D.
func swarmForwardRule(bridge string) []string {
	return []string{"FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"}
}

// swarmOwner identifies a live process for good: its PID and its start time (PIDs recur).
func swarmOwner(pid int) (string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return fmt.Sprintf("%d %s", pid, f[19]), nil // starttime, field 22
}

// writeOwnerFile records in dir that process pid made the swarm of suffix: "PID
// STARTTIME SUFFIX".
func writeOwnerFile(dir string, pid int, suffix string) error {
	owner, err := swarmOwner(pid)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, swarmOwnerFile), []byte(owner+" "+suffix+"\n"), 0o600)
}

// readOwnerFile reads what writeOwnerFile wrote: ok is false for a file that is not one.
func readOwnerFile(path string) (pid int, owner, suffix string, ok bool) {
	raw, err := os.ReadFile(path)
	f := strings.Fields(string(raw))
	if err != nil || len(f) != 3 {
		return 0, "", "", false
	}
	if pid, err = strconv.Atoi(f[0]); err != nil {
		return 0, "", "", false
	}
	return pid, f[0] + " " + f[1], f[2], true
}

// reapStaleSwarms removes the swarms whose owning test process ended without its cleanup
// (a timeout panic, a kill): their engines got SIGTERM with it (Pdeathsig), but the
// namespaces, links, FORWARD rule and directories stay. A swarm with a process still
// running is left alone.
func reapStaleSwarms(t testing.TB) {
	reapStale(t, "swarm", swarmDirPrefix, func(dir, suffix string) staleRun { return staleSwarm(dir, suffix) })
}

// staleRun is what a test's swarm or Docker Hub left behind.
type staleRun interface {
	leftoverProcesses() []swarmProcess
	removeResources(logf func(string, ...any)) []error
}

// reapStale removes what the tests under dirPrefix left when their process ended without
// its cleanup, leaving alone any whose test still runs or a process of which does; stale
// makes the run of a directory and its suffix, what names it in the log.
func reapStale(t testing.TB, what, dirPrefix string, stale func(dir, suffix string) staleRun) {
	ownerFiles, _ := filepath.Glob(filepath.Join(swarmTempDir, dirPrefix+"*", swarmOwnerFile))
	for _, ownerFile := range ownerFiles {
		pid, owner, suffix, ok := readOwnerFile(ownerFile)
		if !ok {
			continue
		}
		if live, err := swarmOwner(pid); err == nil && live == owner {
			continue // its test still runs
		}
		dir := filepath.Dir(ownerFile)
		run := stale(dir, suffix)
		if left := run.leftoverProcesses(); len(left) > 0 {
			t.Logf("%s: leaving stale %s alone: pid %d still runs (%s)", what, dir, left[0].pid, left[0].cmdline)
			continue
		}
		errs := run.removeResources(t.Logf)
		t.Logf("%s: removed stale %s of pid %d (errors: %v)", what, dir, pid, errs)
	}
}

// staleSwarm is what is left of the swarm of suffix in dir, found by the names start gave it.
func staleSwarm(dir, suffix string) *Swarm {
	stale := &Swarm{dir: dir, suffix: suffix, nsInodes: map[uint64]bool{}, Bridge: swarmBridgeName(suffix)}
	for i := range SwarmNodes + 1 { // the nodes, then the Hub's veth
		name := swarmNodeName(suffix, i)
		var st syscall.Stat_t
		if syscall.Stat(swarmNetnsPath(name), &st) == nil {
			stale.Nodes = append(stale.Nodes, SwarmNode{Name: name})
			stale.nsInodes[st.Ino] = true
		}
		host, _ := swarmVethNames(suffix, i)
		stale.veths = append(stale.veths, host)
	}
	rule := swarmForwardRule(stale.Bridge)
	if swarmRun("iptables", append([]string{"-w", "-C"}, rule...)...) == nil {
		stale.iptRule = rule
	}
	return stale
}

type swarmProcess struct {
	pid     int
	cmdline string
}

// leftoverProcesses lists the processes that run in one of the swarm's network namespaces
// or name its directory on their command line, and all their descendants.
func (s *Swarm) leftoverProcesses() []swarmProcess {
	if s.dir == "" {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	ours := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || ours[pid] {
			continue
		}
		var st syscall.Stat_t
		inNamespace := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && s.nsInodes[st.Ino]
		if inNamespace || strings.Contains(CommandLine(pid), s.dir+"/") {
			ours[pid] = true
			for _, d := range DescendantsOf(pid) {
				ours[d] = true
			}
		}
	}
	var out []swarmProcess
	for pid := range ours {
		out = append(out, swarmProcess{pid, CommandLine(pid)})
	}
	slices.SortFunc(out, func(a, b swarmProcess) int { return a.pid - b.pid })
	return out
}

func (s *Swarm) waitGone(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && len(s.leftoverProcesses()) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+4 <= len(p) {
			if v, err := strconv.ParseUint(p[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// waitEngine connects to a dockerd just started on socket, for up to 60 s; exited closes
// when that dockerd ends, with exitErr then its exit status, and logTail says why.
func waitEngine(ctx context.Context, socket string, exited <-chan struct{}, exitErr func() error, logTail func() string) (*Engine, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("exited: %v%s", exitErr(), logTail())
		default:
		}
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		e, err := ConnectEngineAt(pingCtx, socket)
		cancel()
		if err == nil {
			return e, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not answering after 60s: %v%s", err, logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listenInNetns opens a TCP listener on addr inside the network namespace at nsPath. The
// socket stays in that namespace for good; connections it accepts can be relayed from
// this process's own namespace.
func listenInNetns(nsPath, addr string) (l net.Listener, err error) {
	err = inNetns(nsPath, func() error {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// inNetns runs do on a thread of its own inside the network namespace at nsPath: a socket
// do opens stays in that namespace.
func inNetns(nsPath string, do func() error) error {
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine ends on this thread, now in another namespace, and
		// the runtime then ends the thread instead of reusing it.
		runtime.LockOSThread()
		ns, err := os.Open(nsPath)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", nsPath, err)
			return
		}
		done <- do()
	}()
	return <-done
}

// swarmSubnet picks a random 10.X.Y. prefix (X in 200-250) that no address or route of the
// host uses, and returns it with its trailing dot.
func swarmSubnet() (string, error) {
	routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return "", fmt.Errorf("ip route: %w", err)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for range 50 {
		x, err := rand.Int(rand.Reader, big.NewInt(51))
		if err != nil {
			return "", err
		}
		y, err := rand.Int(rand.Reader, big.NewInt(256))
		if err != nil {
			return "", err
		}
		prefix := fmt.Sprintf("10.%d.%d.", 200+x.Int64(), y.Int64())
		_, candidate, _ := net.ParseCIDR(prefix + "0/24")
		taken := strings.Contains(string(routes), prefix)
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (candidate.Contains(ipn.IP) || ipn.Contains(candidate.IP)) {
				taken = true
			}
		}
		if !taken {
			return prefix, nil
		}
	}
	return "", errors.New("no free 10.200-250.x.0/24 subnet")
}

func swarmSuffix() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func swarmLinkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func swarmRun(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
