package subcommand

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/example/custom-nginx/internal/config"
)

// PushCheckName is the program's first argument that selects the push check.
const PushCheckName = "push-check"

// PushCheck asks the registry, after the build and before the push, whether the stack's
// credentials may push to its repository. Docker Hub tells a wrong password, a read-only
// access token and a repository outside the user's namespace apart only at the push, in
// words that name no config key; asked first, each becomes an error that names the key and
// the fix, and nothing is pushed or replaced. The password comes from PasswordEnv.
type PushCheck struct {
	RegistryServer string // as config has it: docker.io for Docker Hub
	Username       string
	Repository     string // the path in the registry
	Tag            string
}

// Args is the command line after PushCheckName: Flags, then repository:tag.
func (c PushCheck) Args() []string { return append(c.Flags(), c.Repository+":"+c.Tag) }

// Flags are Args without repository:tag (the command provider appends it as create).
func (c PushCheck) Flags() []string {
	return []string{"-registry-server=" + c.RegistryServer, "-username=" + c.Username}
}

// Validate says what is wrong with c's settings.
func (c PushCheck) Validate() error {
	if _, err := name.NewTag(config.APIHost(c.RegistryServer) + "/" + c.Repository + ":" + c.Tag); err != nil {
		return fmt.Errorf("the repository %q and tag %q: %v", c.Repository, c.Tag, err)
	}
	return nil
}

// pushCheckMode is the push check's command line: flags, then repository:tag.
var pushCheckMode = Mode[PushCheck]{
	Name:     PushCheckName,
	Synopsis: "-registry-server HOST -username USER REPOSITORY:TAG",
	About:    "asks the registry whether the user (password in $" + PasswordEnv + ") may push to the repository",
	Arg:      "the repository and tag",
	Flags: func() (*flag.FlagSet, *PushCheck, func(string)) {
		c := &PushCheck{}
		fs := flag.NewFlagSet(PushCheckName, flag.ContinueOnError)
		fs.StringVar(&c.RegistryServer, "registry-server", "", "the registry, host[:port] (docker.io for Docker Hub)")
		fs.StringVar(&c.Username, "username", "", "the registry user")
		return fs, c, func(ref string) {
			if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
				c.Repository, c.Tag = ref[:i], ref[i+1:]
			}
		}
	},
}

// ParsePushCheck reads a command line made by Args into a valid PushCheck.
func ParsePushCheck(args []string) (PushCheck, error) { return pushCheckMode.Parse(args) }

// Run asks for push access as a push would: it logs in, starts an upload and cancels it.
func (c PushCheck) Run(ctx context.Context) (string, error) {
	cfg := config.Config{RegistryServer: c.RegistryServer, RegistryUsername: c.Username,
		RegistryPassword: config.Secret(os.Getenv(PasswordEnv)), Repository: c.Repository, ImageTag: c.Tag}
	if err := CheckPush(ctx, cfg); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s may push to %s", c.Username, cfg.Repo()), nil
}

// CheckPush asks cfg's registry for push access to cfg's repository with cfg's credentials.
// nil when the push would be allowed; else an error that names the config key at fault and
// its fix.
func CheckPush(ctx context.Context, cfg config.Config) error {
	repo, err := name.NewRepository(config.APIHost(cfg.RegistryServer) + "/" + cfg.Repository)
	if err != nil {
		return fmt.Errorf("config %s: %v", config.KeyRepository, err)
	}
	login := authn.FromConfig(authn.AuthConfig{Username: cfg.RegistryUsername, Password: string(cfg.RegistryPassword)})
	challenge, err := transport.Ping(ctx, repo.Registry, http.DefaultTransport)
	if err != nil {
		return fmt.Errorf("config %s: cannot reach the registry %s to check the push (%v); fix: start the registry or check the network, or pulumi config set %s <host[:port]>",
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
	return fmt.Errorf("config %s or %s: %s may not push to %s (%s); fix: a password or token with push access (pulumi config set --secret %s <token>), or a repository you may push to (pulumi config set %s <path>)",
		config.KeyRegistryPassword, config.KeyRepository, cfg.RegistryUsername, cfg.Repo(), reason(err),
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
