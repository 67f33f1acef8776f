package subcommand

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PublishIndexName is the program's first argument that selects the index publishing.
const PublishIndexName = "image-index"

// PasswordEnv carries the registry password into the index publishing and the push check: the command resource's
// environment, a Pulumi secret, never its argv.
const PasswordEnv = "CUSTOM_NGINX_REGISTRY_PASSWORD"

// PublishIndex publishes one tag for several platforms: an OCI image index, written with
// go-containerregistry, of the per-platform images the stack pushed. Tag
// (registry/repository:tag) names it, and each of Manifests, "os/arch[/variant]=sha256:…",
// is an image pushed to the same repository by its digest.
type PublishIndex struct {
	Tag       string
	Username  string
	Manifests []string
}

// Args is the command line after PublishIndexName that makes Main write x: Flags, then the tag.
func (x PublishIndex) Args() []string { return append(x.Flags(), x.Tag) }

// Flags are Args without the tag (the command provider appends it as create).
func (x PublishIndex) Flags() []string {
	flags := []string{"-username=" + x.Username}
	for _, m := range x.Manifests {
		flags = append(flags, "-manifest="+m)
	}
	return flags
}

// Validate says what is wrong with x's settings.
func (x PublishIndex) Validate() error {
	var problems []error
	if _, err := name.NewTag(x.Tag); err != nil {
		problems = append(problems, fmt.Errorf("the index's tag %q: %v", x.Tag, err))
	}
	if len(x.Manifests) == 0 {
		problems = append(problems, errors.New("no -manifest: an index needs at least one platform's image"))
	}
	for _, m := range x.Manifests {
		if _, _, err := parseManifest(m); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// parseManifest reads "os/arch[/variant]=sha256:…".
func parseManifest(m string) (v1.Platform, v1.Hash, error) {
	p, d, ok := strings.Cut(m, "=")
	if !ok {
		return v1.Platform{}, v1.Hash{}, fmt.Errorf("-manifest %q: want os/arch[/variant]=sha256:<digest>", m)
	}
	parsed, err := platforms.Parse(p)
	if err != nil {
		return v1.Platform{}, v1.Hash{}, fmt.Errorf("-manifest %q: %v", m, err)
	}
	digest, err := v1.NewHash(d)
	if err != nil {
		return v1.Platform{}, v1.Hash{}, fmt.Errorf("-manifest %q: %v", m, err)
	}
	return v1.Platform{OS: parsed.OS, Architecture: parsed.Architecture, Variant: parsed.Variant}, digest, nil
}

// publishIndexMode is the index publishing's command line: flags, then the tag.
var publishIndexMode = Mode[PublishIndex]{
	Name:     PublishIndexName,
	Synopsis: "-username USER -manifest PLATFORM=DIGEST [-manifest …] REGISTRY/REPOSITORY:TAG",
	About:    "writes an OCI image index of the pushed images under the tag (password in $" + PasswordEnv + ") and prints its digest",
	Arg:      "the tag",
	Flags: func() (*flag.FlagSet, *PublishIndex, func(string)) {
		x := &PublishIndex{}
		fs := flag.NewFlagSet(PublishIndexName, flag.ContinueOnError)
		fs.StringVar(&x.Username, "username", "", "the registry user")
		fs.Func("manifest", "a platform's image in the repository, os/arch[/variant]=sha256:<digest> (repeat)", func(v string) error {
			x.Manifests = append(x.Manifests, v)
			return nil
		})
		return fs, x, func(tag string) { x.Tag = tag }
	},
}

// Parse reads a command line made by Args (the arguments after PublishIndexName) into a valid PublishIndex.
func ParsePublishIndex(args []string) (PublishIndex, error) { return publishIndexMode.Parse(args) }

// Run writes the index, each entry with its platform, and returns its digest.
func (x PublishIndex) Run(ctx context.Context) (string, error) {
	tag, err := name.NewTag(x.Tag)
	if err != nil {
		return "", err
	}
	opts := []remote.Option{remote.WithContext(ctx),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: x.Username, Password: os.Getenv(PasswordEnv)}))}
	var entries []mutate.IndexAddendum
	for _, m := range x.Manifests {
		platform, digest, err := parseManifest(m)
		if err != nil {
			return "", err
		}
		img, err := remote.Image(tag.Context().Digest(digest.String()), opts...)
		if err != nil {
			return "", fmt.Errorf("the %s image %s is not in %s: %w", platforms.Format(platforms.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant}), digest, tag.Context(), err)
		}
		entries = append(entries, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})
	}
	index := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, entries...), types.OCIImageIndex)
	if err := remote.WriteIndex(tag, index, opts...); err != nil {
		return "", fmt.Errorf("writing the index %s: %w", tag, err)
	}
	digest, err := index.Digest()
	if err != nil {
		return "", err
	}
	return digest.String(), nil
}
