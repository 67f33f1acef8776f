package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/config"
)

// TestForEngine: an empty platform becomes the engine's, an empty platforms a mixed swarm's
// nodes'; a set platform is kept as it is; platforms must list every platform the engine
// and its nodes run.
func TestForEngine(t *testing.T) {
	amd64 := config.EnginePlatforms{Engine: "linux/amd64"}
	mixed := config.EnginePlatforms{Engine: "linux/amd64", Nodes: []string{"linux/amd64", "linux/arm64"}}
	for _, tt := range []struct {
		name          string
		cfg           config.Config
		found         config.EnginePlatforms
		wantPlatform  string
		wantPlatforms []string
		wantErr       string
	}{
		{"the engine's", config.Config{}, amd64, "linux/amd64", nil, ""},
		{"set, kept", config.Config{Platform: "linux/arm64"}, amd64, "linux/arm64", nil, ""},
		{"a mixed swarm's nodes", config.Config{}, mixed, "linux/amd64", []string{"linux/amd64", "linux/arm64"}, ""},
		{"listed", config.Config{Platforms: []string{"linux/arm64", "linux/amd64"}}, amd64, "linux/amd64", []string{"linux/arm64", "linux/amd64"}, ""},
		{"the engine's not listed", config.Config{Platforms: []string{"linux/arm64"}}, amd64, "", nil,
			"config platforms: the engine or a swarm node runs linux/amd64, which platforms does not list; fix: pulumi config set platforms linux/arm64,linux/amd64"},
		{"a node's not listed", config.Config{Platforms: []string{"linux/amd64"}}, mixed, "", nil, "a swarm node runs linux/arm64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.ForEngine(tt.found)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Platform != tt.wantPlatform || !slices.Equal(got.Platforms, tt.wantPlatforms) {
				t.Errorf("ForEngine = %q %q, %v; want %q %q", got.Platform, got.Platforms, err, tt.wantPlatform, tt.wantPlatforms)
			}
		})
	}
}
