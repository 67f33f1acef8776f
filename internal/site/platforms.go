package site

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineplatform"
	"github.com/example/custom-nginx/internal/imageindex"
)

// Variant is the build for one more platform than the engine's, with platforms set.
type Variant struct {
	Platform string
	Image    *docker.Image
	Push     *docker.RegistryImage
}

// platformSlug is platform in a name or a tag: linux/arm64/v8 → linux-arm64-v8.
func platformSlug(platform string) string { return strings.ReplaceAll(platform, "/", "-") }

// buildVariants registers, with platforms, one image for each platform other than the
// engine's. No RUN in the final stage: none needs emulation.
func (s *Site) buildVariants(c children, args Args) error {
	for _, p := range args.Config.Platforms {
		if p == args.Config.Platform {
			continue
		}
		img, err := docker.NewImage(c.ctx, c.named("image-"+platformSlug(p)), imageArgs(args, p), c.parent)
		if err != nil {
			return err
		}
		s.Variants = append(s.Variants, Variant{Platform: p, Image: img})
	}
	return nil
}

// publishIndex pushes every variant, then writes the index under imageTag with this
// program in its image-index check mode, the password in its environment as a secret;
// imageRef becomes the index's digest. It returns proven with the pushes and the index.
func (s *Site) publishIndex(c children, cfg config.Config, proven []pulumi.Resource) ([]pulumi.Resource, error) {
	pushed := append([]pulumi.Resource{}, proven...)
	manifests := pulumi.StringArray{pulumi.Sprintf("%s=%s", cfg.Platform, s.Push.Sha256Digest)}
	refs := pulumi.StringMap{cfg.Platform: s.ImageRef}
	for i, v := range s.Variants {
		push, err := docker.NewRegistryImage(c.ctx, c.named("push-"+platformSlug(v.Platform)), pushArgs(cfg, v.Image), c.parent,
			pulumi.DependsOn(proven), pulumi.AdditionalSecretOutputs([]string{"authConfig"}))
		if err != nil {
			return nil, err
		}
		s.Variants[i].Push = push
		pushed = append(pushed, push)
		manifests = append(manifests, pulumi.Sprintf("%s=%s", v.Platform, push.Sha256Digest))
		refs[v.Platform] = pulumi.Sprintf("%s/%s@%s", cfg.RegistryServer, cfg.Repository, push.Sha256Digest)
	}
	tag := cfg.RegistryServer + "/" + cfg.Repository + ":" + cfg.ImageTag
	argv := manifests.ToStringArrayOutput().ApplyT(func(m []string) []string {
		x := imageindex.Index{Tag: tag, Username: cfg.RegistryUsername, Manifests: m}
		return append([]string{c.program, imageindex.Command}, x.Flags()...)
	}).(pulumi.StringArrayOutput)
	var err error
	s.Index, err = local.NewCommand(c.ctx, c.named("index"), &local.CommandArgs{
		// The provider appends create, the index's tag, as the last argument.
		Interpreter: argv,
		Create:      pulumi.String(tag),
		Environment: pulumi.StringMap{imageindex.PasswordEnv: secret(cfg.RegistryPassword)},
		Triggers:    pulumi.Array{manifests}, // a new index for any new digest
	}, c.parent, pulumi.DependsOn(pushed))
	if err != nil {
		return nil, err
	}
	s.PlatformRefs = refs.ToStringMapOutput()
	s.ImageRef = pulumi.Sprintf("%s/%s@%s", cfg.RegistryServer, cfg.Repository, s.Index.Stdout)
	return append(pushed, s.Index), nil
}

// platformsListed fails unless platforms, when set, lists the engine's platform and every
// node's: the engine runs its own variant, and each node pulls its own.
func platformsListed(cfg config.Config, found engineplatform.Platforms) error {
	if len(cfg.Platforms) == 0 {
		return nil
	}
	for _, p := range append([]string{found.Engine}, found.Nodes...) {
		if !slices.Contains(cfg.Platforms, p) {
			return fmt.Errorf("config %s: the engine or a swarm node runs %s, which %s does not list; fix: pulumi config set %s %s,%s",
				config.KeyPlatforms, p, config.KeyPlatforms, config.KeyPlatforms, strings.Join(cfg.Platforms, ","), p)
		}
	}
	return nil
}
