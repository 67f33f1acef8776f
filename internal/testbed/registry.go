package testbed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// Registry is a real distribution (v2) registry on 127.0.0.1 with htpasswd auth: Debian's
// docker-registry, started as a child process. It stands in for Docker Hub.
type Registry struct {
	Addr     string // 127.0.0.1:port; the engine speaks plain HTTP to loopback registries
	User     string
	Password string

	bin string
	cmd *exec.Cmd
	dir string
}

// StartRegistry starts a registry that accepts user:password and nothing else.
func StartRegistry(user, password string) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("no registry binary: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "custom-nginx-registry-")
	if err != nil {
		return nil, err
	}
	r := &Registry{Addr: fmt.Sprintf("127.0.0.1:%d", port), User: user, Password: password, bin: bin, dir: dir}
	if err := r.Start(); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// Start starts the registry process on r.Addr with r's storage: after Kill, the same
// registry with the same content comes back.
func (r *Registry) Start() error {
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	htpasswd := filepath.Join(r.dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
		return err
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: custom-nginx-test
    path: %s
`, filepath.Join(r.dir, "data"), r.Addr, htpasswd)
	configPath := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(r.dir, "registry.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	r.cmd = exec.Command(r.bin, "serve", configPath)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		return err
	}
	// Ready when /v2/ asks for credentials.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	logged, _ := os.ReadFile(filepath.Join(r.dir, "registry.log"))
	return fmt.Errorf("registry on %s not ready after 15s; its log:\n%s", r.Addr, logged)
}

// Requests are the requests the registry has answered, one access-log line each, in the
// order it answered them: a test counts them around an operation to see what it asked.
func (r *Registry) Requests() ([]string, error) {
	logged, err := os.ReadFile(filepath.Join(r.dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	var requests []string
	for _, line := range strings.Split(string(logged), "\n") {
		if accessLine.MatchString(line) {
			requests = append(requests, line)
		}
	}
	return requests, nil
}

// accessLine is a line of the registry's access log (Apache's combined format): the method,
// path and protocol of a request in quotes.
var accessLine = regexp.MustCompile(`"(GET|HEAD|POST|PUT|PATCH|DELETE) /v2/\S* HTTP/`)

// Kill ends the registry process this package started and keeps its storage.
func (r *Registry) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Stop ends the registry process and removes its storage.
func (r *Registry) Stop() {
	r.Kill()
	_ = os.RemoveAll(r.dir)
}

// Auth is the registry's credentials as the engine takes them.
func (r *Registry) Auth() registry.AuthConfig {
	return registry.AuthConfig{Username: r.User, Password: r.Password, ServerAddress: r.Addr}
}

// Digest asks the registry (not the engine) for the manifest digest of repository:tag.
func (r *Registry) Digest(ctx context.Context, repository, tag string) (string, error) {
	ref, err := name.NewTag(r.Addr+"/"+repository+":"+tag, name.Insecure)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password}))
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// FreePort returns a TCP port that was free on every address a moment ago. It is drawn
// below Linux's ephemeral range (32768-60999), where the tests' own outgoing connections
// take their local ports: a port from there can be taken again before the test binds it.
func FreePort() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if l, err := net.Listen("tcp", fmt.Sprintf(":%d", port)); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free TCP port in 20000-31999 after 100 tries")
}

// RequireRegistry starts a registry for the test, stopped when the test ends, or skips
// (under CI fails) naming what is missing.
func RequireRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	reg, err := StartRegistry(user, password)
	if err != nil {
		Unavailable(t, err.Error(), "apt-get install -y docker-registry")
	}
	t.Cleanup(reg.Stop)
	return reg
}
