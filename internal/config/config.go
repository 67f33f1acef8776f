// Package config loads and validates the stack configuration in one place, before any
// resource is registered, so that bad input fails the deployment with nothing created.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
)

// Config keys, as declared in Pulumi.yaml (registryPassword is the one undeclared key).
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
	KeyHostIP           = "hostIp"
	KeySiteHost         = "siteHost"
	KeyMode             = "mode"
	KeyReplicas         = "replicas"
	KeyServiceMode      = "serviceMode"
	KeyPublishMode      = "publishMode"
)

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
	Platform         string // os/arch[/variant], normalized; "" leaves it to the docker provider
	HostIP           string // the address the port is published on
	// SiteHost is the host people open and the smoke check fetches: siteHost, else a
	// specific hostIp, else the remote engine's host, else localhost.
	SiteHost string
	Mode     string // ModeContainer or ModeSwarm
	// Swarm mode only.
	Replicas    int    // tasks of a replicated service
	ServiceMode string // ServiceReplicated or ServiceGlobal (one task on every node)
	PublishMode string // PublishIngress (the routing mesh) or PublishHost (each task on its node)
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
	get := func(key string) string {
		v, _ := src.Get(key)
		return strings.TrimSpace(v)
	}
	var problems []error
	refuse := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("config %s: %s", key, fmt.Sprintf(format, args...)))
	}

	cfg := Config{
		RegistryUsername: get(KeyRegistryUsername),
		ImageTag:         get(KeyImageTag),
		BaseImage:        get(KeyBaseImage),
	}

	push, err := strconv.ParseBool(get(KeyPush))
	if err != nil {
		refuse(KeyPush, "%q is not true or false; fix: pulumi config set push true", get(KeyPush))
	}
	cfg.Push = push

	cfg.RegistryServer, err = normalizeServer(get(KeyRegistryServer))
	if err != nil {
		refuse(KeyRegistryServer, "%v; fix: pulumi config set registryServer docker.io (or host:port of your registry)", err)
	}

	password, passwordSet := src.Get(KeyRegistryPassword)
	cfg.RegistryPassword = Secret(password)
	if passwordSet && !src.IsSecret(KeyRegistryPassword) {
		refuse(KeyRegistryPassword, "is stored in plain text in the stack file; fix: pulumi config rm registryPassword && pulumi config set --secret registryPassword <token>")
	}
	if cfg.Push {
		if cfg.RegistryUsername == "" {
			refuse(KeyRegistryUsername, "is required when push is true; fix: pulumi config set registryUsername <user> (or pulumi config set push false)")
		} else if strings.ContainsAny(cfg.RegistryUsername, " \t:/@") {
			refuse(KeyRegistryUsername, "%q contains a space, ':', '/' or '@'; fix: pulumi config set registryUsername <user>", cfg.RegistryUsername)
		}
		if password == "" {
			refuse(KeyRegistryPassword, "is required when push is true; fix: pulumi config set --secret registryPassword <password-or-access-token> (or pulumi config set push false)")
		}
	}

	cfg.Repository = get(KeyRepository)
	repositoryDerived := cfg.Repository == ""
	if repositoryDerived {
		cfg.Repository = defaultRepositoryName
		if cfg.RegistryUsername != "" {
			cfg.Repository = strings.ToLower(cfg.RegistryUsername) + "/" + defaultRepositoryName
		}
	}
	// A derived repository is only wrong because of registryUsername, reported above.
	if !repositoryDerived || cfg.RegistryUsername != "" {
		if err := validateRepository(cmp.Or(cfg.RegistryServer, DockerHub), cfg.Repository, cfg.Push); err != nil {
			refuse(KeyRepository, "%v; fix: pulumi config set repository <namespace>/<name> (lowercase)", err)
		}
	}
	if cfg.ImageTag == "" {
		refuse(KeyImageTag, "is empty; fix: pulumi config set imageTag v1")
	} else if _, err := reference.WithTag(tagProbe, cfg.ImageTag); err != nil {
		refuse(KeyImageTag, "%q is not a valid tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'); fix: pulumi config set imageTag v1", cfg.ImageTag)
	}

	cfg.HostPort, err = strconv.Atoi(get(KeyHostPort))
	if err != nil || cfg.HostPort < 1 || cfg.HostPort > 65535 {
		refuse(KeyHostPort, "%q is not a port number from 1 to 65535; fix: pulumi config set hostPort 8080", get(KeyHostPort))
	}

	if cfg.BaseImage != "" {
		if err := ValidateBaseImage(cfg.BaseImage); err != nil {
			refuse(KeyBaseImage, "%v; fix: pulumi config set baseImage nginx:<version>-alpine (or pulumi config rm baseImage for the Dockerfile's pinned default)", err)
		}
	}

	if p := get(KeyPlatform); p != "" {
		cfg.Platform, err = normalizePlatform(p)
		if err != nil {
			refuse(KeyPlatform, "%v; fix: pulumi config set platform linux/arm64 (or linux/amd64; pulumi config rm platform for the architecture of the machine running pulumi)", err)
		}
	}

	hostIP, err := netip.ParseAddr(get(KeyHostIP))
	if err != nil || hostIP.Zone() != "" {
		refuse(KeyHostIP, "%q is not an IP address; fix: pulumi config set hostIp 0.0.0.0 (every interface) or 127.0.0.1 (this host only)", get(KeyHostIP))
	}
	cfg.HostIP = hostIP.String()

	engineHost, err := EngineHost(dockerHost)
	if err != nil {
		problems = append(problems, fmt.Errorf("DOCKER_HOST (or docker:host) %q: %v; fix: export DOCKER_HOST=tcp://<host>:2376 or ssh://<user>@<host>, or unset it for the local engine", dockerHost, err))
	}
	siteHost := get(KeySiteHost)
	if siteHost != "" {
		if err := validateSiteHost(siteHost); err != nil {
			refuse(KeySiteHost, "%v; fix: pulumi config set siteHost <dns-name-or-address> (no scheme, no port)", err)
		}
	}
	switch {
	case siteHost != "":
		cfg.SiteHost = siteHost
	case hostIP.IsValid() && !hostIP.IsUnspecified():
		cfg.SiteHost = cfg.HostIP // the only address the port answers on
	case engineHost != "":
		cfg.SiteHost = engineHost
	default:
		cfg.SiteHost = "localhost"
	}

	cfg.Mode = get(KeyMode)
	switch cfg.Mode {
	case ModeContainer:
	case ModeSwarm:
		if !cfg.Push {
			refuse(KeyMode, "swarm needs push true: every node pulls the pushed image; fix: pulumi config set push true (with registry credentials), or pulumi config set mode container")
		}
		if hostIP.IsValid() && !hostIP.IsUnspecified() {
			refuse(KeyHostIP, "%q: a swarm service publishes on every address of a node; fix: pulumi config rm hostIp (or pulumi config set mode container)", cfg.HostIP)
		}
	default:
		refuse(KeyMode, "%q is neither container nor swarm; fix: pulumi config set mode container (or swarm)", cfg.Mode)
	}
	cfg.Replicas, err = strconv.Atoi(get(KeyReplicas))
	if err != nil || cfg.Replicas < 1 {
		refuse(KeyReplicas, "%q is not a number of tasks of 1 or more; fix: pulumi config set replicas 2", get(KeyReplicas))
	}
	cfg.ServiceMode = oneOf(refuse, KeyServiceMode, get(KeyServiceMode), ServiceReplicated, ServiceGlobal)
	cfg.PublishMode = oneOf(refuse, KeyPublishMode, get(KeyPublishMode), PublishIngress, PublishHost)

	return cfg, errors.Join(problems...)
}

// oneOf returns value if it is one of the allowed values, else reports it under key.
func oneOf(refuse func(key, format string, args ...any), key, value string, allowed ...string) string {
	if !slices.Contains(allowed, value) {
		refuse(key, "%q is not one of %s; fix: pulumi config set %s %s", value, strings.Join(allowed, ", "), key, allowed[0])
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
	named, err := reference.WithName(host + "/probe")
	if err != nil || reference.Domain(named) != host || strings.Contains(host, ":") {
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
	case DockerHub, "index.docker.io", "registry-1.docker.io":
		return DockerHub, nil
	}
	// A registry host is whatever the reference grammar accepts as the domain of a name.
	named, err := reference.WithName(server + "/probe")
	if err != nil || reference.Domain(named) != server {
		return "", fmt.Errorf("%q is not a registry host[:port]", server)
	}
	return server, nil
}

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
