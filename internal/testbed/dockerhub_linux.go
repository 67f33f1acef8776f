//go:build linux

package testbed

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
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

	"github.com/docker/docker/api/types/registry"
	"github.com/example/custom-nginx/internal/testpki"
)

// DockerHub is a Docker Hub of the test's own: the real registry (distribution 2.8) with
// Hub's token auth on registry-1.docker.io:443 and Hub's token service on
// auth.docker.io:443, both over TLS from a private CA, in a network namespace of the
// test's. A mount namespace gives every process started through it (Command, Wrap, the
// pulumi wrapper, the dedicated engine) /etc/hosts and a CA bundle that lead Hub's names
// there; the host never sees either. The dedicated engine (Socket) reaches "Docker Hub"
// exactly as on a user's machine.
type DockerHub struct {
	Accounts  HubAccounts
	CA        *testpki.CA
	Tokens    *TokenService
	Socket    string  // DOCKER_HOST of the dedicated engine: unix:///tmp/cnhub…/d.sock
	Engine    *Engine // connected client of that engine
	BaseImage string  // docker.io/library/nginx:<tag> pushed to the Hub, when HubOptions.AppDir was set
	StartTime time.Duration

	dir       string // everything the Hub writes: certificates, storage, the engine's data
	suffix    string
	netnsName string
	netnsPath string
	nsInode   uint64
	holder    *hubProcess // sleep, keeping the mount namespace
	registry  *hubProcess
	dockerd   *hubProcess
	tokenSrv  *http.Server
	library   string // password of the Hub user "library", who pushes the base
}

// HubOptions configure StartDockerHub.
type HubOptions struct {
	Accounts HubAccounts
	// AppDir, if set, names the app whose Dockerfile pins the base: the host engine's
	// BaseImage(AppDir) (TEST_BASE_IMAGE, the offline stand-in) is pushed to the Hub as
	// docker.io/library/nginx:<pinned tag>, and then removed from the dedicated engine.
	AppDir string
	// Arm64, with AppDir, makes docker.io/library/nginx:<pinned tag> an OCI image index of
	// the host's base and the arm64 stand-in (Arm64BaseEnv), as the official image serves
	// every platform under one tag.
	Arm64 bool
}

// The Hub's addresses on the loopback of its network namespace: two, since both servers
// take port 443.
const (
	hubRegistryIP = "127.0.10.1" // registry-1.docker.io and index.docker.io
	hubAuthIP     = "127.0.10.2" // auth.docker.io
)

// hubHosts is what the Hub's names resolve to inside its namespaces.
var hubHosts = map[string]string{
	HubRegistryHost: hubRegistryIP,
	HubIndexHost:    hubRegistryIP,
	"docker.io":     hubRegistryIP,
	HubAuthHost:     hubAuthIP,
	"localhost":     "127.0.0.1",
}

// hubLibraryUser owns library/*: the Hub's own account for the official images.
const hubLibraryUser = "library"

// StartDockerHub starts the tests' Docker Hub and its dedicated engine and tears all of it
// down when the test ends, passed or not. It needs root, ip, nsenter, unshare, mount,
// dockerd and docker-registry: without them the test is skipped (fails under CI).
func StartDockerHub(t testing.TB, opts HubOptions) *DockerHub {
	t.Helper()
	requireHubTools(t)
	var base *hubBase
	if opts.AppDir != "" {
		base = new(requireHubBase(t, opts.AppDir, opts.Arm64))
	}
	began := time.Now()
	h := &DockerHub{Accounts: opts.Accounts}
	t.Cleanup(func() { h.teardown(t) })
	if err := h.start(t, base); err != nil {
		t.Fatalf("starting the test Docker Hub: %v", err)
	}
	h.StartTime = time.Since(began)
	t.Logf("docker hub: registry %s, token service %s, engine %s ready in %s",
		HubRegistryHost, HubAuthHost, h.Socket, h.StartTime.Round(time.Millisecond))
	return h
}

func requireHubTools(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "the test Docker Hub's namespaces need root", "run the tests as root")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"ip", "iproute2"}, {"nsenter", "util-linux"}, {"unshare", "util-linux"}, {"mount", "mount"},
		{"dockerd", "docker.io"}, {"docker-registry", "docker-registry"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			Unavailable(t, "no "+tool.bin+" for the test Docker Hub", "apt-get install -y "+tool.pkg)
		}
	}
}

// start builds the Hub step by step; whatever a step made before an error, teardown removes.
func (h *DockerHub) start(t testing.TB, base *hubBase) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reapStaleHubs(t)
	if err := h.makeDir(); err != nil {
		return err
	}
	library := make([]byte, 16)
	if _, err := rand.Read(library); err != nil {
		return err
	}
	h.library = hex.EncodeToString(library)
	accounts := h.Accounts
	accounts.Users = map[string]string{hubLibraryUser: h.library}
	for user, password := range h.Accounts.Users {
		accounts.Users[user] = password
	}
	tokens, err := NewTokenService(accounts, t.Logf)
	if err != nil {
		return err
	}
	h.Tokens = tokens
	if err := h.writeFiles(); err != nil {
		return err
	}
	if err := h.makeNamespaces(); err != nil {
		return err
	}
	if err := h.startTokenService(); err != nil {
		return err
	}
	if err := h.startRegistry(ctx); err != nil {
		return err
	}
	if err := h.startEngine(ctx); err != nil {
		return err
	}
	if base == nil {
		return nil
	}
	return h.pushBase(ctx, *base)
}

// makeDir makes the Hub's directory, with the owner file that lets a later run remove what
// a killed run left (the swarm's scheme: writeOwnerFile, reapStaleHubs).
func (h *DockerHub) makeDir() error {
	suffix, err := swarmSuffix()
	if err != nil {
		return err
	}
	h.suffix = suffix
	dir, err := os.MkdirTemp(swarmTempDir, hubDirPrefix)
	if err != nil {
		return err
	}
	h.dir = dir
	return writeOwnerFile(h.dir, os.Getpid(), h.suffix)
}

// writeFiles writes the CA, the registry's certificate and key, the token signer's
// certificate, and the hosts file and CA bundle the namespaces see.
func (h *DockerHub) writeFiles() error {
	ca, err := testpki.New("custom-nginx test Docker Hub CA")
	if err != nil {
		return err
	}
	h.CA = ca
	leaf, err := hubServerCert(ca, HubRegistryHost, HubIndexHost, "docker.io")
	if err != nil {
		return err
	}
	certPEM, keyPEM := []byte(leaf.CertPEM), []byte(leaf.KeyPEM)
	system, err := os.ReadFile(hubSystemBundle)
	if err != nil {
		return fmt.Errorf("the system CA bundle the namespaces extend: %w", err)
	}
	bundle := append(append(system, '\n'), ca.PEM...)
	files := map[string][]byte{
		"ca.pem":        []byte(ca.PEM),
		"registry.crt":  certPEM,
		"registry.key":  keyPEM,
		"token-signer":  h.Tokens.SigningCertPEM(),
		"hosts":         hubHostsFile(),
		"ca-bundle.crt": bundle,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(h.dir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// hubSystemBundle is the system's CA bundle (Debian's), which Go, curl and dockerd read.
const hubSystemBundle = "/etc/ssl/certs/ca-certificates.crt"

// hubHostsFile is the namespaces' /etc/hosts: the Hub's names, then the host's own lines
// (its hostname), less any that name the Hub.
func hubHostsFile() []byte {
	var b strings.Builder
	b.WriteString("# the test Docker Hub (custom-nginx testbed)\n")
	for _, ip := range []string{"127.0.0.1", hubRegistryIP, hubAuthIP} {
		var names []string
		for _, name := range []string{"localhost", HubRegistryHost, HubIndexHost, "docker.io", HubAuthHost} {
			if hubHosts[name] == ip {
				names = append(names, name)
			}
		}
		b.WriteString(ip + " " + strings.Join(names, " ") + "\n")
	}
	host, _ := os.ReadFile("/etc/hosts")
	for _, line := range strings.Split(string(host), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.Contains(line, "docker.io") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return []byte(b.String())
}

// makeNamespaces makes the network namespace (loopback only, with the Hub's addresses, no
// route out) and the holder process whose mount namespace has the Hub's hosts and bundle.
func (h *DockerHub) makeNamespaces() error {
	h.netnsName = hubNetnsName(h.suffix)
	h.netnsPath = swarmNetnsPath(h.netnsName)
	if err := swarmRun("ip", "netns", "add", h.netnsName); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(h.netnsPath, &st); err != nil {
		return err
	}
	h.nsInode = st.Ino
	for _, args := range [][]string{
		{"-n", h.netnsName, "link", "set", "lo", "up"},
		{"-n", h.netnsName, "addr", "add", hubRegistryIP + "/32", "dev", "lo"},
		{"-n", h.netnsName, "addr", "add", hubAuthIP + "/32", "dev", "lo"},
	} {
		if err := swarmRun("ip", args...); err != nil {
			return err
		}
	}
	holder, err := startHubProcess(filepath.Join(h.dir, "holder.log"),
		append([]string{"nsenter", "--net=" + h.netnsPath, "--"}, h.namesAndTrust("sleep", "infinity")...)...)
	if err != nil {
		return err
	}
	h.holder = holder
	return h.waitMounts()
}

// namesAndTrust is argv run in a mount namespace of its own in which the Hub's names
// resolve as in the Hub's namespaces and its CA is trusted: the Hub's hosts file and CA
// bundle bind-mounted over the system's. Private propagation: the host never sees them.
func (h *DockerHub) namesAndTrust(argv ...string) []string {
	script := `mount --bind "$1" /etc/hosts && mount --bind "$2" "$3" && shift 3 && exec "$@"`
	return append([]string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", script, "hub-names",
		filepath.Join(h.dir, "hosts"), filepath.Join(h.dir, "ca-bundle.crt"), hubSystemBundle}, argv...)
}

// RelayInto makes the Hub's servers reachable from the network namespace at nsPath at the
// addresses its names resolve to (namesAndTrust): each listens there on the loopback and
// relays into the Hub's namespace. Close the relays when done.
func (h *DockerHub) RelayInto(nsPath string) ([]*Forwarder, error) {
	var relays []*Forwarder
	for _, ip := range []string{hubRegistryIP, hubAuthIP} {
		if err := swarmRun("nsenter", "--net="+nsPath, "--", "ip", "addr", "add", ip+"/32", "dev", "lo"); err != nil {
			return relays, err
		}
		addr := net.JoinHostPort(ip, "443")
		l, err := listenInNetns(nsPath, addr)
		if err != nil {
			return relays, fmt.Errorf("relay of %s in %s: %w", addr, nsPath, err)
		}
		relays = append(relays, ForwardFunc(l, func() (net.Conn, error) { return h.DialContext(context.Background(), "tcp", addr) }))
	}
	return relays, nil
}

// waitMounts waits until the holder's namespace shows the Hub's hosts file.
func (h *DockerHub) waitMounts() error {
	want, err := os.ReadFile(filepath.Join(h.dir, "hosts"))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/hosts", h.holder.pid())); err == nil && string(got) == string(want) {
			return nil
		}
		select {
		case <-h.holder.exited:
			return fmt.Errorf("the namespace holder exited: %v%s", h.holder.waitErr, h.holder.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the namespace holder's mounts not in place after 10s%s", h.holder.logTail())
		}
	}
}

// startTokenService serves the token service from this process on auth.docker.io:443
// inside the network namespace.
func (h *DockerHub) startTokenService() error {
	leaf, err := hubServerCert(h.CA, HubAuthHost)
	if err != nil {
		return err
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		return err
	}
	l, err := listenInNetns(h.netnsPath, net.JoinHostPort(hubAuthIP, "443"))
	if err != nil {
		return fmt.Errorf("token service listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/token", h.Tokens)
	h.tokenSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_ = h.tokenSrv.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}()
	return nil
}

// startRegistry starts distribution with Hub's token auth on registry-1.docker.io:443 in
// the network namespace and waits for its challenge.
func (h *DockerHub) startRegistry(ctx context.Context) error {
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %[1]s/storage
  delete:
    enabled: true
http:
  addr: %[2]s:443
  tls:
    certificate: %[1]s/registry.crt
    key: %[1]s/registry.key
auth:
  token:
    realm: %[3]s
    service: %[4]s
    issuer: %[5]s
    rootcertbundle: %[1]s/token-signer
`, h.dir, hubRegistryIP, HubRealm, HubService, HubAuthHost)
	configPath := filepath.Join(h.dir, "registry.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	reg, err := startHubProcess(filepath.Join(h.dir, "registry.log"),
		"nsenter", "--net="+h.netnsPath, "--", "docker-registry", "serve", configPath)
	if err != nil {
		return err
	}
	h.registry = reg
	client := h.HTTPClient()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get("https://" + HubRegistryHost + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-reg.exited:
			return fmt.Errorf("the registry exited: %v%s", reg.waitErr, reg.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the registry not answering after 15s: %v%s", err, reg.logTail())
		}
	}
}

// Auth is the engine's credentials for user of the Hub, with the password HubAccounts
// gives (for a user with only a read-only token: that token).
func (h *DockerHub) Auth(user string) registry.AuthConfig {
	password, ok := h.Accounts.Users[user]
	if !ok {
		password = h.Accounts.ReadOnlyTokens[user]
	}
	return HubAuth(user, password)
}

// HubAuth is the engine's credentials for Docker Hub, keyed as docker login keys them.
func HubAuth(user, password string) registry.AuthConfig {
	return registry.AuthConfig{Username: user, Password: password, ServerAddress: HubServerAddr}
}

// Dir is the Hub's directory on the host: a place for a test's own files (short paths,
// removed with the Hub).
func (h *DockerHub) Dir() string { return h.dir }
