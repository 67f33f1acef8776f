package engineplatform_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

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

// TestOfAMixedSwarm: a manager whose nodes run two platforms is refused, naming each
// node's platform and the fix. No such swarm can be had here: an HTTP server answers the
// engine API's /nodes as a manager of an amd64 and an arm64 node would.
func TestOfAMixedSwarm(t *testing.T) {
	cleanEnv(t)
	manager := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		if !strings.HasSuffix(r.URL.Path, "/nodes") {
			return // /_ping, for the client's version negotiation
		}
		_ = json.NewEncoder(w).Encode([]swarm.Node{
			{Description: swarm.NodeDescription{Hostname: "amd", Platform: swarm.Platform{OS: "linux", Architecture: "x86_64"}}},
			{Description: swarm.NodeDescription{Hostname: "pi", Platform: swarm.Platform{OS: "linux", Architecture: "aarch64"}}},
		})
	}))
	defer manager.Close()
	_, err := engineplatform.Of(context.Background(), config.Config{Mode: config.ModeSwarm, DockerHost: "tcp://" + manager.Listener.Addr().String()})
	want := "config platform: the swarm's nodes run linux/amd64 (amd) and linux/arm64 (pi), and one build runs on one platform; fix: pulumi config set platform linux/amd64"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want it to start %q", err, want)
	}
}
