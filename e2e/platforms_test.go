package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/platforms"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/testbed"
)

// TestPlatformsOfARealEngine: the platform is the real engine's own, as it reports it, normalized
// as the config spells platforms.
func TestPlatformsOfARealEngine(t *testing.T) {
	e := testbed.RequireEngine(t)
	noDockerEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := e.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := engine.PlatformsOf(ctx, config.Config{DockerHost: e.DaemonHost()})
	if err != nil {
		t.Fatal(err)
	}
	if want := platforms.Format(platforms.Normalize(platforms.Platform{OS: v.Os, Architecture: v.Arch})); got.Engine != want || got.Nodes != nil {
		t.Errorf("platforms %+v, want the engine's %q and no nodes", got, want)
	}
}

// noDockerEnv keeps the developer's DOCKER_* out: the test names the engine it asks.
func noDockerEnv(t *testing.T) {
	for _, key := range []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"} {
		t.Setenv(key, "")
	}
}
