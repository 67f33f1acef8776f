// Package config loads and validates the stack configuration in one place, before any
// resource is registered, so that bad input fails the deployment with nothing created.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
)

// Config keys, as declared in Pulumi.yaml (but SecretKeys).
const (
	KeyRegistryServer   = "registryServer"
	KeyRegistryUsername = "registryUsername"
	KeyRegistryPassword = "registryPassword"
	KeyRepository       = "repository"
	KeyImageTag         = "imageTag"
	KeyHostPort         = "hostPort"
	KeyBaseImage        = "baseImage"
	KeyPush             = "push"
	KeyPlatform         = "platform"
	KeyPlatforms        = "platforms"
	KeyHostIP           = "hostIp"
	KeySiteHost         = "siteHost"
	KeyMode             = "mode"
	KeyReplicas         = "replicas"
	KeyServiceMode      = "serviceMode"
	KeyPublishMode      = "publishMode"
	KeyHTTPSPort        = "httpsPort"
	KeyTLSCertificate   = "tlsCertificate"
	KeyTLSKey           = "tlsKey"
	KeyTLSTrustedCA     = "tlsTrustedCA"
)

// SecretKeys are the keys that must be set with --secret. Pulumi.yaml leaves them
// undeclared: a declared key without a default is one the CLI requires of every stack.
var SecretKeys = []string{KeyRegistryPassword, KeyTLSKey}

// Values of mode, serviceMode and publishMode, in Docker's words.
const (
	ModeContainer     = "container"
	ModeSwarm         = "swarm"
	ServiceReplicated = "replicated"
	ServiceGlobal     = "global"
	PublishIngress    = "ingress"
	PublishHost       = "host"
)

// DockerHub is the registryServer value that means Docker Hub.
const DockerHub = "docker.io"

// DockerHubRegistry is where Docker Hub's registry API answers: where Docker's own client
// logs in, pushes and pulls docker.io images.
const DockerHubRegistry = "registry-1.docker.io"

// defaultRepositoryName is the repository's last path component when repository is empty.
const defaultRepositoryName = "custom-nginx"

// Secret holds a credential in memory; it never prints its value.
type Secret string

func (Secret) String() string   { return "[secret]" }
func (Secret) GoString() string { return "[secret]" }

// Config is the validated stack configuration.
type Config struct {
	RegistryServer   string // host[:port]; DockerHub for Docker Hub
	RegistryUsername string
	RegistryPassword Secret
	Repository       string // path inside the registry, e.g. "user/custom-nginx"
	ImageTag         string
	HostPort         int
	BaseImage        string // "" keeps the Dockerfile's pinned default
	Push             bool
	Platform         string // os/arch[/variant], normalized; "" is the engine's (site asks it)
	// Platforms publishes one tag for each of them (an image index), normalized; empty
	// publishes the one build for Platform.
	Platforms []string
	HostIP    string // the address the port is published on
	// DockerHost is the engine as the docker provider reaches it: docker:host, else
	// DOCKER_HOST; "" for the local engine. In swarm mode, the manager.
	DockerHost string
	// SiteHost is the host people open and the smoke check fetches: siteHost, else a
	// specific hostIp, else the remote engine's host, else localhost.
	SiteHost string
	Mode     string // ModeContainer or ModeSwarm
	// Swarm mode only.
	Replicas    int    // tasks of a replicated service
	ServiceMode string // ServiceReplicated or ServiceGlobal (one task on every node)
	PublishMode string // PublishIngress (the routing mesh) or PublishHost (each task on its node)
	// TLS, when enabled, serves the site over HTTPS on HTTPSPort; hostPort redirects to it.
	TLS       TLS
	HTTPSPort int
	// Warnings are what is right for now but soon will not be, such as a certificate
	// about to expire: the program shows them and goes on.
	Warnings []string
}

// Source is where raw values come from: a Pulumi context in the program, a map in tests.
type Source interface {
	// Get returns the raw value of a project config key and whether it is set.
	Get(key string) (string, bool)
	// IsSecret reports whether the key was set with --secret.
	IsSecret(key string) bool
}

// Load reads every key from src (the CLI hands the program each declared key, its default
// applied), validates all of them and reports every problem at once, each naming its key
// and the command that fixes it. dockerHost is the engine's address as the docker provider
// gets it (DOCKER_HOST or docker:host; "" for the local engine).
func Load(src Source, dockerHost string) (Config, error) {
	r := &reader{src: src}
	var cfg Config
	r.registry(&cfg)
	r.publishing(&cfg, dockerHost)
	r.tls(&cfg)
	r.swarm(&cfg)
	return cfg, errors.Join(r.problems...)
}

// reader reads raw values from a Source and collects their problems in the order they are
// found, which is the order the CLI lists them in.
type reader struct {
	src      Source
	problems []error
}

func (r *reader) get(key string) string {
	v, _ := r.src.Get(key)
	return strings.TrimSpace(v)
}

func (r *reader) refuse(key, format string, args ...any) {
	r.problems = append(r.problems, fmt.Errorf("config %s: %s", key, fmt.Sprintf(format, args...)))
}

// registry reads whether and where the image is pushed, and as whom.
func (r *reader) registry(cfg *Config) {
	cfg.Push = r.push()
	cfg.RegistryServer = r.registryServer()
	cfg.RegistryUsername, cfg.RegistryPassword = r.credentials(cfg.Push)
	cfg.Repository = r.repository(cfg.RegistryServer, cfg.RegistryUsername, cfg.Push)
	cfg.ImageTag = r.imageTag()
}

func (r *reader) push() bool {
	push, err := strconv.ParseBool(r.get(KeyPush))
	if err != nil {
		r.refuse(KeyPush, "%q is not true or false; fix: pulumi config set push true", r.get(KeyPush))
	}
	return push
}

func (r *reader) registryServer() string {
	server, err := normalizeServer(r.get(KeyRegistryServer))
	if err != nil {
		r.refuse(KeyRegistryServer, "%v; fix: pulumi config set registryServer docker.io (or host:port of your registry)", err)
	}
	return server
}

// credentials reads registryUsername and registryPassword. A plain-text password is refused
// even when push is false: it sits in the stack file either way.
func (r *reader) credentials(push bool) (string, Secret) {
	username := r.get(KeyRegistryUsername)
	password, passwordSet := r.src.Get(KeyRegistryPassword)
	if passwordSet && !r.src.IsSecret(KeyRegistryPassword) {
		r.refuse(KeyRegistryPassword, "is stored in plain text in the stack file; fix: pulumi config rm registryPassword && pulumi config set --secret registryPassword <token>")
	}
	if push {
		if username == "" {
			r.refuse(KeyRegistryUsername, "is required when push is true; fix: pulumi config set registryUsername <user> (or pulumi config set push false)")
		} else if strings.ContainsAny(username, " \t:/@") {
			r.refuse(KeyRegistryUsername, "%q contains a space, ':', '/' or '@'; fix: pulumi config set registryUsername <user>", username)
		}
		if password == "" {
			r.refuse(KeyRegistryPassword, "is required when push is true; fix: pulumi config set --secret registryPassword <password-or-access-token> (or pulumi config set push false)")
		}
	}
	return username, Secret(password)
}

// repository reads the repository path; empty means <username>/custom-nginx.
func (r *reader) repository(server, username string, push bool) string {
	repository := r.get(KeyRepository)
	if repository == "" {
		if username == "" {
			// Wrong only where registryUsername is required, and its absence is reported.
			return defaultRepositoryName
		}
		repository = strings.ToLower(username) + "/" + defaultRepositoryName
	}
	if err := validateRepository(cmp.Or(server, DockerHub), repository, push); err != nil {
		r.refuse(KeyRepository, "%v; fix: pulumi config set repository <namespace>/<name> (lowercase)", err)
	}
	return repository
}

func (r *reader) imageTag() string {
	tag := r.get(KeyImageTag)
	if tag == "" {
		r.refuse(KeyImageTag, "is empty; fix: pulumi config set imageTag v1")
	} else if _, err := reference.WithTag(tagProbe, tag); err != nil {
		r.refuse(KeyImageTag, "%q is not a valid tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'); fix: pulumi config set imageTag v1", tag)
	}
	return tag
}

// publishing reads what the image is built from and for, and where the site answers.
func (r *reader) publishing(cfg *Config, dockerHost string) {
	cfg.DockerHost = dockerHost
	cfg.HostPort = r.integer(KeyHostPort, 1, 65535, "%q is not a port number from 1 to 65535; fix: pulumi config set hostPort 8080")
	cfg.BaseImage = r.baseImage()
	cfg.Platform = r.platform()
	cfg.Platforms = r.platforms(cfg.Platform, cfg.Push)
	cfg.HostIP = r.hostIP()
	cfg.SiteHost = r.siteHost(cfg.HostIP, r.engineHost(dockerHost))
}

// integer reads key as a whole number from lo to hi; problem says what is wrong with the
// value, given as its %q.
func (r *reader) integer(key string, lo, hi int, problem string) int {
	n, err := strconv.Atoi(r.get(key))
	if err != nil || n < lo || n > hi {
		r.refuse(key, problem, r.get(key))
	}
	return n
}

func (r *reader) baseImage() string {
	image := r.get(KeyBaseImage)
	if image != "" {
		if err := ValidateBaseImage(image); err != nil {
			r.refuse(KeyBaseImage, "%v; fix: pulumi config set baseImage nginx:<version>-alpine (or pulumi config rm baseImage for the Dockerfile's pinned default)", err)
		}
	}
	return image
}

func (r *reader) platform() string {
	p := r.get(KeyPlatform)
	if p == "" {
		return ""
	}
	normalized, err := normalizePlatform(p)
	if err != nil {
		r.refuse(KeyPlatform, "%v; fix: pulumi config set platform linux/arm64 (or linux/amd64; pulumi config rm platform for the engine's own)", err)
	}
	return normalized
}

// platforms reads the comma-separated platforms an index publishes: each once, only with a
// push (an index lives in a registry), and not beside platform.
func (r *reader) platforms(platform string, push bool) []string {
	raw := r.get(KeyPlatforms)
	if raw == "" {
		return nil
	}
	var list []string
	for _, p := range strings.Split(raw, ",") {
		normalized, err := normalizePlatform(strings.TrimSpace(p))
		switch {
		case err != nil:
			r.refuse(KeyPlatforms, "%v; fix: pulumi config set platforms linux/amd64,linux/arm64", err)
		case slices.Contains(list, normalized):
			r.refuse(KeyPlatforms, "lists %s twice; fix: pulumi config set platforms linux/amd64,linux/arm64", normalized)
		default:
			list = append(list, normalized)
		}
	}
	if !push {
		r.refuse(KeyPlatforms, "needs push true: an index of several platforms lives in a registry; fix: pulumi config set push true (or pulumi config rm platforms)")
	}
	if platform != "" {
		r.refuse(KeyPlatforms, "and platform are both set; fix: pulumi config rm platform (platforms lists what is built; the engine runs its own from them)")
	}
	return list
}

func (r *reader) hostIP() string {
	ip, err := netip.ParseAddr(r.get(KeyHostIP))
	if err != nil || ip.Zone() != "" {
		r.refuse(KeyHostIP, "%q is not an IP address; fix: pulumi config set hostIp 0.0.0.0 (every interface) or 127.0.0.1 (this host only)", r.get(KeyHostIP))
	}
	return ip.String()
}

// engineHost is the remote engine's host, "" for a local one. A bad address is not a config
// key's problem, so it is reported under the variable that holds it.
func (r *reader) engineHost(dockerHost string) string {
	host, err := EngineHost(dockerHost)
	if err != nil {
		r.problems = append(r.problems, fmt.Errorf("DOCKER_HOST (or docker:host) %q: %v; fix: export DOCKER_HOST=tcp://<host>:2376 or ssh://<user>@<host>, or unset it for the local engine", dockerHost, err))
	}
	return host
}

// siteHost reads siteHost, else takes the most specific host the site answers on (see
// Config.SiteHost).
func (r *reader) siteHost(hostIP, engineHost string) string {
	if siteHost := r.get(KeySiteHost); siteHost != "" {
		if err := validateSiteHost(siteHost); err != nil {
			r.refuse(KeySiteHost, "%v; fix: pulumi config set siteHost <dns-name-or-address> (no scheme, no port)", err)
		}
		return siteHost
	}
	switch {
	case oneAddress(hostIP):
		return hostIP // the only address the port answers on
	case engineHost != "":
		return engineHost
	}
	return "localhost"
}

// oneAddress reports whether hostIP, as hostIP() returns it, is one address rather than
// every interface (or invalid).
func oneAddress(hostIP string) bool {
	ip, err := netip.ParseAddr(hostIP)
	return err == nil && !ip.IsUnspecified()
}

// swarm reads whether the site runs as one container or as a swarm service, and the
// service's shape.
func (r *reader) swarm(cfg *Config) {
	cfg.Mode = r.mode(cfg.Push, cfg.HostIP)
	cfg.Replicas = r.integer(KeyReplicas, 1, math.MaxInt, "%q is not a number of tasks of 1 or more; fix: pulumi config set replicas 2")
	cfg.ServiceMode = r.oneOf(KeyServiceMode, ServiceReplicated, ServiceGlobal)
	cfg.PublishMode = r.oneOf(KeyPublishMode, PublishIngress, PublishHost)
}

func (r *reader) mode(push bool, hostIP string) string {
	mode := r.get(KeyMode)
	switch mode {
	case ModeContainer:
	case ModeSwarm:
		if !push {
			r.refuse(KeyMode, "swarm needs push true: every node pulls the pushed image; fix: pulumi config set push true (with registry credentials), or pulumi config set mode container")
		}
		if oneAddress(hostIP) {
			r.refuse(KeyHostIP, "%q: a swarm service publishes on every address of a node; fix: pulumi config rm hostIp (or pulumi config set mode container)", hostIP)
		}
	default:
		r.refuse(KeyMode, "%q is neither container nor swarm; fix: pulumi config set mode container (or swarm)", mode)
	}
	return mode
}

// oneOf reads key, which must be one of allowed; the fix suggests the first.
func (r *reader) oneOf(key string, allowed ...string) string {
	value := r.get(key)
	if !slices.Contains(allowed, value) {
		r.refuse(key, "%q is not one of %s; fix: pulumi config set %s %s", value, strings.Join(allowed, ", "), key, allowed[0])
	}
	return value
}

// normalizePlatform parses os/arch[/variant] as the engine does and refuses what the
// Linux image cannot be built for.
func normalizePlatform(value string) (string, error) {
	p, err := platforms.Parse(value)
	if err != nil {
		return "", fmt.Errorf("%q is not a platform (os/arch[/variant]): %v", value, err)
	}
	p = platforms.Normalize(p)
	if p.OS != "linux" {
		return "", fmt.Errorf("%q is not a Linux platform, and the nginx Alpine image only runs on Linux", value)
	}
	return platforms.Format(p), nil
}

// validateSiteHost accepts a DNS name or an IP address, without scheme or port.
func validateSiteHost(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !isDomain(host) || strings.Contains(host, ":") {
		return fmt.Errorf("%q is not a DNS name or IP address", host)
	}
	return nil
}

// normalizeServer accepts host[:port] and folds Docker Hub's aliases into DockerHub.
func normalizeServer(server string) (string, error) {
	if server == "" {
		return "", errors.New("is empty")
	}
	if strings.Contains(server, "://") {
		return "", fmt.Errorf("%q has a scheme; give host[:port] only", server)
	}
	switch strings.ToLower(server) {
	case DockerHub, "index.docker.io", DockerHubRegistry:
		return DockerHub, nil
	}
	if !isDomain(server) {
		return "", fmt.Errorf("%q is not a registry host[:port]", server)
	}
	return server, nil
}

// isDomain reports whether host is what the reference grammar accepts as the domain of a
// name (host[:port]): the grammar Docker checks image references with.
func isDomain(host string) bool {
	named, err := reference.WithName(host + "/probe")
	return err == nil && reference.Domain(named) == host
}

// validateRepository accepts a lowercase repository path; pushing to Docker Hub needs
// exactly <namespace>/<name>.
func validateRepository(server, repository string, push bool) error {
	if strings.ToLower(repository) != repository {
		return fmt.Errorf("%q has uppercase letters", repository)
	}
	named, err := reference.WithName(server + "/" + repository)
	if err != nil || reference.Path(named) != repository {
		return fmt.Errorf("%q is not a repository path (lowercase letters, digits and separators, components joined by '/', no tag)", repository)
	}
	if push && server == DockerHub && strings.Count(repository, "/") != 1 {
		return fmt.Errorf("%q must be <namespace>/<name> on Docker Hub", repository)
	}
	return nil
}

// tagProbe is any valid name: a tag's validity does not depend on the repository.
var tagProbe, _ = reference.WithName("probe")

// ValidateBaseImage accepts an image reference pinned by a tag other than latest or a digest.
func ValidateBaseImage(image string) error {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("%q is not an image reference: %v", image, err)
	}
	_, hasDigest := named.(reference.Digested)
	tagged, hasTag := named.(reference.Tagged)
	if !hasDigest && (!hasTag || tagged.Tag() == "latest") {
		return fmt.Errorf("%q has no pinned version (a tag other than latest, or a digest)", image)
	}
	return nil
}

// Repo is the repository's full name: registry/repository.
func (c Config) Repo() string { return c.RegistryServer + "/" + c.Repository }

// APIHost is where server's registry API answers: Docker Hub's API host for DockerHub, else
// server itself.
func APIHost(server string) string {
	if server == DockerHub {
		return DockerHubRegistry
	}
	return server
}
