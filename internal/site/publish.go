package site

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/subcommand"
)

// publish registers, when the config pushes, each platform's push of the proven build and,
// with platforms, the index; it returns them, nil without a push.
func (s *Site) publish(r registration, cfg config.Config) ([]pulumi.Resource, error) {
	if !cfg.Push {
		return nil, nil
	}
	var pushed []pulumi.Resource
	for i, b := range s.Builds {
		role, opts := "push", []pulumi.ResourceOption{pulumi.DependsOn([]pulumi.Resource{s.Preflight}), pulumi.AdditionalSecretOutputs([]string{"authConfig"})}
		if i > 0 {
			role += "-" + platformSlug(b.Platform)
		} else {
			opts = append(opts, pulumi.Aliases([]pulumi.Alias{r.formerly}))
		}
		push, err := docker.NewRegistryImage(r.ctx, r.named(role), pushArgs(cfg, b.Image), append(opts, r.parent)...)
		if err != nil {
			return nil, err
		}
		s.Builds[i].Push = push
		pushed = append(pushed, push)
	}
	s.RepoURL = pulumi.String(repoURL(cfg)).ToStringOutput()
	if len(s.Builds) == 1 {
		return pushed, nil
	}
	if err := s.publishIndex(r, cfg, pushed); err != nil {
		return nil, err
	}
	return append(pushed, s.Index), nil
}

// pushCheck registers the question to the registry whether the credentials may push, which
// every build waits for: a refusal fails `up` before anything is built, pushed or replaced.
// It runs when a push will follow, a new build (app/, the base, the platforms, the tag) or a
// new registry, repository or credentials, so a no-op `up` asks the registry nothing.
func (s *Site) pushCheck(r registration, args Args) error {
	cfg := args.Config
	appSHA256, err := dirSHA256(args.AppDir)
	if err != nil {
		return err
	}
	check := subcommand.PushCheck{RegistryServer: cfg.RegistryServer, Username: cfg.RegistryUsername,
		Repository: cfg.Repository, Tag: cfg.ImageTag}
	// The password's hash, a secret too, makes a new password ask again.
	password := sha256.Sum256([]byte(cfg.RegistryPassword))
	triggers := pulumi.Array{pulumi.String(appSHA256), pulumi.String(cfg.BaseImage), pulumi.ToStringArray(platforms(cfg)),
		pulumi.ToSecret(pulumi.String(hex.EncodeToString(password[:])))}
	s.PushCheck, err = r.command("push-check", subcommand.PushCheckName, pulumi.ToStringArray(check.Flags()),
		pulumi.String(check.Repository+":"+check.Tag), triggers,
		pulumi.StringMap{subcommand.PasswordEnv: secret(cfg.RegistryPassword)})
	return err
}

// publishIndex registers the index of every platform's push under imageTag, written by this
// program's publish-index subcommand with the password in its environment as a secret.
func (s *Site) publishIndex(r registration, cfg config.Config, pushed []pulumi.Resource) error {
	manifests := pulumi.StringArray{}
	refs := pulumi.StringMap{}
	for _, b := range s.Builds {
		manifests = append(manifests, pulumi.Sprintf("%s=%s", b.Platform, b.Push.Sha256Digest))
		refs[b.Platform] = pulumi.Sprintf("%s@%s", cfg.Repo(), b.Push.Sha256Digest)
	}
	tag := cfg.Repo() + ":" + cfg.ImageTag
	flags := manifests.ToStringArrayOutput().ApplyT(func(m []string) []string {
		return subcommand.PublishIndex{Tag: tag, Username: cfg.RegistryUsername, Manifests: m}.Flags()
	}).(pulumi.StringArrayOutput)
	var err error
	s.Index, err = r.command("index", subcommand.PublishIndexName, flags, pulumi.String(tag),
		pulumi.Array{manifests}, // a new index for any new digest
		pulumi.StringMap{subcommand.PasswordEnv: secret(cfg.RegistryPassword)}, pulumi.DependsOn(pushed))
	if err != nil {
		return err
	}
	s.PlatformRefs = refs.ToStringMapOutput()
	return nil
}

// imageRef is what runs the site: the index's digest with platforms, else the push's, or
// the local build when nothing is pushed.
func (s *Site) imageRef(cfg config.Config) pulumi.StringOutput {
	switch {
	case !cfg.Push:
		return s.ImageID
	case s.Index != nil:
		return pulumi.Sprintf("%s@%s", cfg.Repo(), s.Index.Stdout)
	}
	return pulumi.Sprintf("%s@%s", cfg.Repo(), s.Builds[0].Push.Sha256Digest)
}

// pushArgs push image to the registry with the config's credentials.
func pushArgs(cfg config.Config, image *docker.Image) *docker.RegistryImageArgs {
	return &docker.RegistryImageArgs{
		Name: image.ImageName,
		// Docker Hub refuses the registry DELETE API: destroy leaves the tag in place.
		KeepRemotely: pulumi.Bool(true),
		// Push again exactly when the build changed.
		Triggers: pulumi.StringMap{"imageId": image.RepoDigest},
		AuthConfig: &docker.RegistryImageAuthConfigArgs{
			Address:  pulumi.String(authAddress(cfg.RegistryServer)),
			Username: pulumi.String(cfg.RegistryUsername),
			Password: secret(cfg.RegistryPassword),
		},
	}
}
