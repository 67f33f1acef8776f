package config_test

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/pulumimock"
)

// projectRoot is the project folder, whose Pulumi.yaml the CLI reads.
const projectRoot = "../.."

func TestDefaultsComeFromPulumiYAML(t *testing.T) {
	want := map[string]string{}
	for key, d := range declared {
		want[key] = d.def
	}
	got, err := pulumimock.ProjectDefaults(projectRoot)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("defaults from Pulumi.yaml:\n got %v\nwant %v", got, want)
	}
	if _, ok := got[config.KeyRegistryPassword]; ok {
		t.Fatal("registryPassword must stay undeclared (Pulumi.yaml says why)")
	}
}

var (
	withCreds      = map[string]string{config.KeyRegistryUsername: "alice", config.KeyRegistryPassword: "s3cret"}
	secretPassword = map[string]bool{config.KeyRegistryPassword: true}
)

// merge is withCreds with extra on top.
func merge(extra map[string]string) map[string]string {
	out := maps.Clone(withCreds)
	maps.Copy(out, extra)
	return out
}

// load runs Load on Pulumi.yaml's defaults with values on top, as the CLI would; the keys
// in secret were set with --secret.
func load(t *testing.T, values map[string]string, secret map[string]bool, dockerHost string) (config.Config, error) {
	t.Helper()
	stack := pulumimock.NewStackConfig(t, projectRoot, values)
	stack.Secret = secret
	return config.Load(stack, dockerHost)
}

// defaults is what Load makes of Pulumi.yaml's defaults with push=false, the Config that
// each case of TestLoad edits into the one it expects.
func defaults() config.Config {
	return config.Config{RegistryServer: "docker.io", Repository: "custom-nginx", ImageTag: "v1", HostPort: 8080, HostIP: "0.0.0.0",
		SiteHost: "localhost", Mode: "container", Replicas: 2, ServiceMode: "replicated", PublishMode: "ingress", HTTPSPort: 8443}
}

// pushing is the edit that withCreds makes: alice pushes to her Docker Hub repository.
func pushing(c *config.Config) {
	c.Push, c.RegistryUsername, c.RegistryPassword, c.Repository = true, "alice", "s3cret", "alice/custom-nginx"
}

func TestLoad(t *testing.T) {
	digest := "nginx:1.28.0-alpine@sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name       string
		values     map[string]string
		secret     map[string]bool
		dockerHost string               // the engine's address (DOCKER_HOST)
		want       func(*config.Config) // edits defaults() into the expected Config
	}{
		{name: "defaults with Docker Hub credentials", values: withCreds, secret: secretPassword, want: pushing},
		{name: "push=false needs no credentials", values: map[string]string{config.KeyPush: "false"}, want: func(*config.Config) {}},
		{name: "Docker Hub aliases fold into docker.io", values: merge(map[string]string{config.KeyRegistryServer: "registry-1.docker.io"}), secret: secretPassword, want: pushing},
		{
			name: "local registry, nested repository, pinned base, other port",
			values: merge(map[string]string{config.KeyRegistryServer: "127.0.0.1:5000", config.KeyRepository: "team/web/site",
				config.KeyImageTag: "2026.11-rc.1", config.KeyHostPort: "9090", config.KeyBaseImage: digest}),
			secret: secretPassword,
			want: func(c *config.Config) {
				pushing(c)
				c.RegistryServer, c.Repository, c.ImageTag, c.HostPort, c.BaseImage = "127.0.0.1:5000", "team/web/site", "2026.11-rc.1", 9090, digest
			},
		},
		{
			name: "username with uppercase makes a lowercase default repository", values: merge(map[string]string{config.KeyRegistryUsername: "Alice"}), secret: secretPassword,
			want: func(c *config.Config) { pushing(c); c.RegistryUsername = "Alice" },
		},
		{
			name: "platform, host address and site host", values: map[string]string{config.KeyPush: "false", config.KeyPlatform: "linux/arm64/v8", config.KeyHostIP: "127.0.0.1", config.KeySiteHost: "site.example.com"},
			want: func(c *config.Config) {
				c.Platform, c.HostIP, c.SiteHost = "linux/arm64", "127.0.0.1", "site.example.com"
			},
		},
		{
			name: "a one-address hostIp is where the site is", values: map[string]string{config.KeyPush: "false", config.KeyHostIP: "::1", config.KeyPlatform: "linux/amd64"},
			want: func(c *config.Config) { c.Platform, c.HostIP, c.SiteHost = "linux/amd64", "::1", "::1" },
		},
		{
			name: "a remote engine over tcp is where the site is", values: map[string]string{config.KeyPush: "false"}, dockerHost: "tcp://192.0.2.7:2376",
			want: func(c *config.Config) { c.SiteHost = "192.0.2.7" },
		},
		{
			name: "a remote engine over ssh is where the site is", values: map[string]string{config.KeyPush: "false"}, dockerHost: "ssh://deploy@build-box.example.com:2222",
			want: func(c *config.Config) { c.SiteHost = "build-box.example.com" },
		},
		{
			name: "siteHost wins over the remote engine", values: map[string]string{config.KeyPush: "false", config.KeySiteHost: "10.1.2.3"}, dockerHost: "tcp://[2001:db8::1]:2375",
			want: func(c *config.Config) { c.SiteHost = "10.1.2.3" },
		},
		{
			name: "a local socket is this machine", values: map[string]string{config.KeyPush: "false"}, dockerHost: "unix:///var/run/docker.sock",
			want: func(c *config.Config) { c.SiteHost = "localhost" },
		},
		{
			name: "platforms, normalized, in their order", values: merge(map[string]string{config.KeyPlatforms: "linux/arm64, linux/x86_64"}), secret: secretPassword,
			want: func(c *config.Config) { pushing(c); c.Platforms = []string{"linux/arm64", "linux/amd64"} },
		},
		{
			name: "swarm, global, host publishing", values: merge(map[string]string{config.KeyMode: "swarm", config.KeyServiceMode: "global", config.KeyPublishMode: "host", config.KeyReplicas: "3"}), secret: secretPassword,
			want: func(c *config.Config) {
				pushing(c)
				c.Mode, c.Replicas, c.ServiceMode, c.PublishMode = "swarm", 3, "global", "host"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := defaults()
			want.DockerHost = tt.dockerHost // the engine is the one given, whatever its form
			tt.want(&want)
			got, err := load(t, tt.values, tt.secret, tt.dockerHost)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("config:\n got %#v\nwant %#v", got, want)
			}
			if got.RegistryPassword != want.RegistryPassword {
				t.Fatal("password differs")
			}
		})
	}
}

// refusal is a config that Load refuses, and the parts its error must say, in order.
type refusal struct {
	name       string
	values     map[string]string
	secret     map[string]bool
	dockerHost string // the engine's address (DOCKER_HOST)
	wantErr    []string
}

func checkRefusals(t *testing.T, tests []refusal) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.values, tt.secret, tt.dockerHost)
			if err == nil {
				t.Fatalf("want error containing %q, got none", tt.wantErr)
			}
			rest := err.Error()
			for _, want := range tt.wantErr {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("error %q\ndoes not contain %q (after the parts before it)", err, want)
					continue
				}
				rest = rest[i+len(want):]
			}
		})
	}
}

func TestLoadRefusesRegistry(t *testing.T) {
	checkRefusals(t, []refusal{
		{name: "missing username when pushing", values: map[string]string{config.KeyRegistryPassword: "x"}, secret: secretPassword,
			wantErr: []string{"config registryUsername: is required when push is true", "pulumi config set registryUsername"}},
		{name: "missing password when pushing", values: map[string]string{config.KeyRegistryUsername: "alice"},
			wantErr: []string{"config registryPassword: is required when push is true", "pulumi config set --secret registryPassword"}},
		{name: "password set in plain text", values: withCreds,
			wantErr: []string{"config registryPassword: is stored in plain text", "pulumi config set --secret registryPassword"}},
		{name: "password in plain text is refused even with push=false", values: merge(map[string]string{config.KeyPush: "false"}),
			wantErr: []string{"config registryPassword: is stored in plain text"}},
		{name: "username with a slash", values: merge(map[string]string{config.KeyRegistryUsername: "alice/bob"}), secret: secretPassword,
			wantErr: []string{`config registryUsername: "alice/bob" contains`}},
		{name: "server with scheme", values: merge(map[string]string{config.KeyRegistryServer: "https://ghcr.io"}), secret: secretPassword,
			wantErr: []string{`config registryServer: "https://ghcr.io" has a scheme`, "pulumi config set registryServer"}},
		{name: "server not a host", values: merge(map[string]string{config.KeyRegistryServer: "bad host"}), secret: secretPassword,
			wantErr: []string{`config registryServer: "bad host" is not a registry host[:port]`}},
		{name: "uppercase repository", values: merge(map[string]string{config.KeyRepository: "Alice/site"}), secret: secretPassword,
			wantErr: []string{`config repository: "Alice/site" has uppercase letters`, "pulumi config set repository"}},
		{name: "repository with a tag", values: merge(map[string]string{config.KeyRepository: "alice/site:v2"}), secret: secretPassword,
			wantErr: []string{`config repository: "alice/site:v2" is not a repository path`}},
		{name: "Docker Hub repository without namespace", values: merge(map[string]string{config.KeyRepository: "site"}), secret: secretPassword,
			wantErr: []string{`config repository: "site" must be <namespace>/<name> on Docker Hub`}},
		{name: "bad tag", values: merge(map[string]string{config.KeyImageTag: "-v1"}), secret: secretPassword,
			wantErr: []string{`config imageTag: "-v1" is not a valid tag`, "pulumi config set imageTag"}},
		{name: "empty tag", values: merge(map[string]string{config.KeyImageTag: " "}), secret: secretPassword,
			wantErr: []string{"config imageTag: is empty"}},
		{name: "push not a bool", values: merge(map[string]string{config.KeyPush: "yes please"}), secret: secretPassword,
			wantErr: []string{`config push: "yes please" is not true or false`}},
	})
}

func TestLoadRefusesPublishing(t *testing.T) {
	checkRefusals(t, []refusal{
		{name: "port zero", values: merge(map[string]string{config.KeyHostPort: "0"}), secret: secretPassword,
			wantErr: []string{`config hostPort: "0" is not a port number from 1 to 65535`, "pulumi config set hostPort"}},
		{name: "port too large", values: merge(map[string]string{config.KeyHostPort: "65536"}), secret: secretPassword,
			wantErr: []string{`config hostPort: "65536" is not a port number`}},
		{name: "port not a number", values: merge(map[string]string{config.KeyHostPort: "http"}), secret: secretPassword,
			wantErr: []string{`config hostPort: "http" is not a port number`}},
		{name: "base image without version", values: merge(map[string]string{config.KeyBaseImage: "nginx"}), secret: secretPassword,
			wantErr: []string{`config baseImage: "nginx" has no pinned version`, "pulumi config set baseImage"}},
		{name: "base image latest", values: merge(map[string]string{config.KeyBaseImage: "nginx:latest"}), secret: secretPassword,
			wantErr: []string{`config baseImage: "nginx:latest" has no pinned version`}},
		{name: "base image malformed", values: merge(map[string]string{config.KeyBaseImage: "nginx:1.28:alpine"}), secret: secretPassword,
			wantErr: []string{`config baseImage: "nginx:1.28:alpine" is not an image reference`}},
		{name: "platform not os/arch", values: merge(map[string]string{config.KeyPlatform: "linux/amd64/v3/extra"}), secret: secretPassword,
			wantErr: []string{`config platform: "linux/amd64/v3/extra" is not a platform`, "pulumi config set platform linux/arm64"}},
		{name: "platform not Linux", values: merge(map[string]string{config.KeyPlatform: "windows/amd64"}), secret: secretPassword,
			wantErr: []string{`config platform: "windows/amd64" is not a Linux platform`, "pulumi config set platform"}},
		{name: "platforms, one twice", values: merge(map[string]string{config.KeyPlatforms: "linux/amd64,linux/x86_64"}), secret: secretPassword,
			wantErr: []string{"config platforms: lists linux/amd64 twice", "pulumi config set platforms linux/amd64,linux/arm64"}},
		{name: "platforms, one not Linux", values: merge(map[string]string{config.KeyPlatforms: "linux/amd64,windows/amd64"}), secret: secretPassword,
			wantErr: []string{`config platforms: "windows/amd64" is not a Linux platform`}},
		{name: "platforms without a push", values: map[string]string{config.KeyPush: "false", config.KeyPlatforms: "linux/amd64,linux/arm64"},
			wantErr: []string{"config platforms: needs push true", "pulumi config set push true"}},
		{name: "platforms beside platform", values: merge(map[string]string{config.KeyPlatforms: "linux/amd64,linux/arm64", config.KeyPlatform: "linux/arm64"}), secret: secretPassword,
			wantErr: []string{"config platforms: and platform are both set", "pulumi config rm platform"}},
		{name: "hostIp not an address", values: merge(map[string]string{config.KeyHostIP: "localhost"}), secret: secretPassword,
			wantErr: []string{`config hostIp: "localhost" is not an IP address`, "pulumi config set hostIp 0.0.0.0"}},
		{name: "hostIp with a port", values: merge(map[string]string{config.KeyHostIP: "127.0.0.1:8080"}), secret: secretPassword,
			wantErr: []string{`config hostIp: "127.0.0.1:8080" is not an IP address`}},
		{name: "siteHost with a scheme", values: merge(map[string]string{config.KeySiteHost: "http://site.example.com"}), secret: secretPassword,
			wantErr: []string{`config siteHost: "http://site.example.com" is not a DNS name or IP address`, "pulumi config set siteHost"}},
		{name: "siteHost with a port", values: merge(map[string]string{config.KeySiteHost: "site.example.com:8080"}), secret: secretPassword,
			wantErr: []string{`config siteHost: "site.example.com:8080" is not a DNS name or IP address`}},
		{name: "DOCKER_HOST unparseable", values: merge(map[string]string{}), secret: secretPassword, dockerHost: "docker-box",
			wantErr: []string{`DOCKER_HOST (or docker:host) "docker-box"`, "export DOCKER_HOST=tcp://"}},
		{name: "DOCKER_HOST with an unknown scheme", values: merge(map[string]string{}), secret: secretPassword, dockerHost: "ftp://docker-box",
			wantErr: []string{`DOCKER_HOST (or docker:host) "ftp://docker-box": scheme "ftp"`}},
	})
}

func TestLoadRefusesSwarm(t *testing.T) {
	checkRefusals(t, []refusal{
		{name: "swarm without push", values: map[string]string{config.KeyMode: "swarm", config.KeyPush: "false"},
			wantErr: []string{"config mode: swarm needs push true", "pulumi config set push true", "pulumi config set mode container"}},
		{name: "swarm with one host address", values: merge(map[string]string{config.KeyMode: "swarm", config.KeyHostIP: "127.0.0.1"}), secret: secretPassword,
			wantErr: []string{`config hostIp: "127.0.0.1": a swarm service publishes on every address of a node`, "pulumi config rm hostIp"}},
		{name: "unknown mode", values: merge(map[string]string{config.KeyMode: "kubernetes"}), secret: secretPassword,
			wantErr: []string{`config mode: "kubernetes" is neither container nor swarm`, "pulumi config set mode container"}},
		{name: "zero replicas", values: merge(map[string]string{config.KeyReplicas: "0"}), secret: secretPassword,
			wantErr: []string{`config replicas: "0" is not a number of tasks of 1 or more`, "pulumi config set replicas 2"}},
		{name: "unknown service mode", values: merge(map[string]string{config.KeyServiceMode: "daemonset"}), secret: secretPassword,
			wantErr: []string{`config serviceMode: "daemonset" is not one of replicated, global`, "pulumi config set serviceMode replicated"}},
		{name: "unknown publish mode", values: merge(map[string]string{config.KeyPublishMode: "mesh"}), secret: secretPassword,
			wantErr: []string{`config publishMode: "mesh" is not one of ingress, host`, "pulumi config set publishMode ingress"}},
	})
}

// TestLoadReportsEveryProblem: the problems come in Load's order, which the CLI lists them in.
func TestLoadReportsEveryProblem(t *testing.T) {
	checkRefusals(t, []refusal{
		{name: "every problem is reported at once", values: map[string]string{config.KeyHostPort: "0", config.KeyImageTag: "-x"},
			wantErr: []string{"config registryUsername: is required", "config registryPassword: is required",
				"config imageTag:", "config hostPort:"}},
	})
}

func TestSecretNeverPrints(t *testing.T) {
	cfg := config.Config{RegistryPassword: "hunter2"}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.RegistryPassword)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("password printed: %s", s)
		}
	}
}
