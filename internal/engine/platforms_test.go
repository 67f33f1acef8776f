package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/swarm"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
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
	_, err := engine.PlatformsOf(context.Background(), config.Config{DockerHost: "tcp://127.0.0.1:1"})
	var unreachable *engine.UnreachableError
	if !errors.As(err, &unreachable) || unreachable.Engine != "tcp://127.0.0.1:1" {
		t.Errorf("error %v, want an UnreachableError for tcp://127.0.0.1:1", err)
	}
}

// TestOfAMixedSwarm: the manager's platform, and every node's once, sorted. No swarm of
// two platforms can be had here: an HTTP server answers the engine API's /version and
// /nodes as an amd64 manager of two amd64 nodes and an arm64 one would.
func TestOfAMixedSwarm(t *testing.T) {
	cleanEnv(t)
	manager := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		node := func(host, arch string) swarm.Node {
			return swarm.Node{Description: swarm.NodeDescription{Hostname: host, Platform: swarm.Platform{OS: "linux", Architecture: arch}}}
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/version"):
			_ = json.NewEncoder(w).Encode(types.Version{Os: "linux", Arch: "amd64"})
		case strings.HasSuffix(r.URL.Path, "/nodes"):
			_ = json.NewEncoder(w).Encode([]swarm.Node{node("pi", "aarch64"), node("amd", "x86_64"), node("amd2", "x86_64")})
		} // else /_ping, for the client's version negotiation
	}))
	defer manager.Close()
	got, err := engine.PlatformsOf(context.Background(), config.Config{Mode: config.ModeSwarm, DockerHost: "tcp://" + manager.Listener.Addr().String()})
	want := config.EnginePlatforms{Engine: "linux/amd64", Nodes: []string{"linux/amd64", "linux/arm64"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("platforms %+v (%v), want %+v", got, err, want)
	}
}
