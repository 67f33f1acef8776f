// Package pushcheck asks the registry, before anything is built, whether the stack's
// credentials may push to its repository. Docker Hub tells a wrong password, a read-only
// access token and a repository outside the user's namespace apart only at the push, after
// the build, in words that name no config key; asked first, each becomes an error that
// names the key and the fix, and nothing is built, pushed or replaced.
package pushcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/example/custom-nginx/internal/config"
)

// Check asks cfg's registry for push access to cfg's repository with cfg's credentials, as
// a push would: it logs in, starts an upload and cancels it. nil when the push would be
// allowed; else an error that names the config key at fault and its fix.
func Check(ctx context.Context, cfg config.Config) error {
	repo, err := name.NewRepository(registryHost(cfg.RegistryServer) + "/" + cfg.Repository)
	if err != nil {
		return fmt.Errorf("config %s: %v", config.KeyRepository, err)
	}
	login := authn.FromConfig(authn.AuthConfig{Username: cfg.RegistryUsername, Password: string(cfg.RegistryPassword)})
	challenge, err := transport.Ping(ctx, repo.Registry, http.DefaultTransport)
	if err != nil {
		return fmt.Errorf("config %s: cannot reach the registry %s to check the push before building (%v); fix: start the registry or check the network, or pulumi config set %s <host[:port]>",
			config.KeyRegistryServer, cfg.RegistryServer, err, config.KeyRegistryServer)
	}
	if challenge.Scheme == "bearer" {
		// The token service checks the login; the token it grants may still lack push.
		if _, err := transport.Exchange(ctx, repo.Registry, login, http.DefaultTransport, []string{repo.Scope(transport.PushScope)}, challenge); err != nil {
			return loginRefused(cfg, err)
		}
	}
	err = remote.CheckPushPermission(repo.Tag(cfg.ImageTag), keychain{login}, http.DefaultTransport)
	var refused *transport.Error
	switch {
	case err == nil:
		return nil
	case challenge.Scheme != "bearer" && errors.As(err, &refused) && refused.StatusCode == http.StatusUnauthorized:
		return loginRefused(cfg, err) // basic auth: the registry itself checks the login
	}
	return pushRefused(cfg, err)
}

// registryHost is where the registry API answers.
func registryHost(server string) string {
	if server == config.DockerHub {
		return config.DockerHubRegistry
	}
	return server
}

func loginRefused(cfg config.Config, err error) error {
	return fmt.Errorf("config %s: %s refused the login of %s (%s); fix: pulumi config set --secret %s <password-or-access-token> (on Docker Hub: Account settings → Personal access tokens, Read & Write)",
		config.KeyRegistryPassword, cfg.RegistryServer, cfg.RegistryUsername, reason(err), config.KeyRegistryPassword)
}

// pushRefused says which key is at fault when the login works but the push is refused: on
// Docker Hub a user pushes only under their own namespace, and a read-only token never.
func pushRefused(cfg config.Config, err error) error {
	user := strings.ToLower(cfg.RegistryUsername)
	switch {
	case cfg.RegistryServer == config.DockerHub && namespace(cfg.Repository) != user:
		return fmt.Errorf("config %s: %s may not push to %s, which is not in the namespace %s (%s); fix: pulumi config set %s %s/%s",
			config.KeyRepository, cfg.RegistryUsername, cfg.Repository, user, reason(err), config.KeyRepository, user, lastPart(cfg.Repository))
	case cfg.RegistryServer == config.DockerHub:
		return fmt.Errorf("config %s: the token of %s may pull but not push %s, as a read-only access token (%s); fix: make a Read & Write access token (Account settings → Personal access tokens), then pulumi config set --secret %s <token>",
			config.KeyRegistryPassword, cfg.RegistryUsername, cfg.Repository, reason(err), config.KeyRegistryPassword)
	}
	return fmt.Errorf("config %s or %s: %s may not push to %s/%s (%s); fix: a password or token with push access (pulumi config set --secret %s <token>), or a repository you may push to (pulumi config set %s <path>)",
		config.KeyRegistryPassword, config.KeyRepository, cfg.RegistryUsername, cfg.RegistryServer, cfg.Repository, reason(err),
		config.KeyRegistryPassword, config.KeyRepository)
}

// reason is what the registry or its token service said, without the request line.
func reason(err error) string {
	var refused *transport.Error
	if !errors.As(err, &refused) {
		return err.Error()
	}
	var said []string
	for _, d := range refused.Errors {
		said = append(said, fmt.Sprintf("%s: %s", d.Code, d.Message))
	}
	if len(said) == 0 { // not the registry's error format: the token service's
		msg := refused.Error()
		var hub struct{ Details string } // Docker Hub's token service: {"details":"…"}
		if i := strings.Index(msg, "{"); i >= 0 && json.Unmarshal([]byte(msg[i:]), &hub) == nil && hub.Details != "" {
			return fmt.Sprintf("HTTP %d: %s", refused.StatusCode, hub.Details)
		}
		if i := strings.Index(msg, ": "); refused.Request != nil && i >= 0 {
			msg = msg[i+2:] // the request line
		}
		return msg
	}
	return strings.Join(said, "; ")
}

func namespace(repository string) string {
	ns, _, _ := strings.Cut(repository, "/")
	return ns
}

func lastPart(repository string) string { return repository[strings.LastIndex(repository, "/")+1:] }

// keychain hands every registry the stack's one login.
type keychain struct{ authn.Authenticator }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.Authenticator, nil }
