package pulumimock

import (
	"fmt"
	"maps"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/example/custom-nginx/internal/config"
)

// ProjectDefaults are the defaults the Pulumi.yaml in root declares, read by the SDK's
// project loader: what the CLI hands the program for a key the stack does not set.
func ProjectDefaults(root string) (map[string]string, error) {
	project, err := workspace.LoadProject(filepath.Join(root, "Pulumi.yaml"))
	if err != nil {
		return nil, err
	}
	defaults := map[string]string{}
	for key, decl := range project.Config {
		if decl.Default != nil {
			defaults[key] = fmt.Sprint(decl.Default)
		}
	}
	return defaults, nil
}

// With is base with extra's keys set over it.
func With(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	return out
}

// StackConfig is a stack's config as the program sees it: the project's defaults with
// values set over them; the keys in secret were set with --secret.
type StackConfig struct {
	Values map[string]string
	Secret map[string]bool
}

// NewStackConfig reads the defaults of the project in root and sets values over them.
func NewStackConfig(t testing.TB, root string, values map[string]string, secret ...string) StackConfig {
	t.Helper()
	defaults, err := ProjectDefaults(root)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(defaults, values)
	c := StackConfig{Values: defaults, Secret: map[string]bool{}}
	for _, key := range secret {
		c.Secret[key] = true
	}
	return c
}

func (c StackConfig) Get(key string) (string, bool) { v, ok := c.Values[key]; return v, ok }
func (c StackConfig) IsSecret(key string) bool      { return c.Secret[key] }

// Load validates the config as the program does, for the engine at dockerHost, or fails.
func (c StackConfig) Load(t testing.TB, dockerHost string) config.Config {
	t.Helper()
	cfg, err := config.Load(c, dockerHost)
	if err != nil {
		t.Fatalf("config %v: %v", c.Values, err)
	}
	return cfg
}
