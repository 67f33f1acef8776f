package engineplatform_test

import (
	"context"
	"errors"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineplatform"
)

// cleanEnv keeps the developer's DOCKER_* out: the tests name the engine they ask. The
// answer of a real engine, and of a real swarm's nodes, is e2e's to test.
func cleanEnv(t *testing.T) {
	for _, key := range []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"} {
		t.Setenv(key, "")
	}
}

// TestOfAnEngineOutOfReach: nothing listening is an UnreachableError naming the address,
// which lets a preview go on.
func TestOfAnEngineOutOfReach(t *testing.T) {
	cleanEnv(t)
	_, err := engineplatform.Of(context.Background(), config.Config{DockerHost: "tcp://127.0.0.1:1"})
	var unreachable *engineplatform.UnreachableError
	if !errors.As(err, &unreachable) || unreachable.Engine != "tcp://127.0.0.1:1" {
		t.Errorf("error %v, want an UnreachableError for tcp://127.0.0.1:1", err)
	}
}
