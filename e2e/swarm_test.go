//go:build linux

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/subcommand"
	"github.com/example/custom-nginx/internal/testbed"
)

// standinBase is the offline nginx image scripts/standin-base.sh builds on the host engine.
const standinBase = "custom-nginx-test/nginx-standin:local"

// swarmPublishedPort is the port the test's service publishes on every node, in host mode.
const swarmPublishedPort = 8080

// TestTwoNodeSwarm builds a real two-node swarm (two engines in network namespaces of their
// own), pushes an image from the manager to the test registry and runs it as a global
// service that publishes its port in host mode: every node pulls it with the registry's
// credentials and answers on its own address.
func TestTwoNodeSwarm(t *testing.T) {
	host := testbed.RequireEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := swarmTestImage(ctx, t, host)
	reg := testbed.RequireRegistry(t, "swarm", "e2e-"+randomHex(t, 16))
	s := testbed.StartSwarm(t, testbed.SwarmOptions{Registry: reg})

	checkOneManagerAllReady(ctx, t, s)
	noDockerEnv(t)
	expectSwarmPlatform(ctx, t, s)
	byDigest := pushFromManager(ctx, t, s, host, reg, img)
	worker := s.Nodes[1]
	if _, err := worker.Engine.ImageInspect(ctx, byDigest); err == nil {
		t.Fatalf("worker %s already has %s before the service runs", worker.Name, byDigest)
	}
	serviceID, remove := createGlobalService(ctx, t, s.Manager.Engine, reg, byDigest)
	waitTaskOnEveryNode(ctx, t, s, serviceID)
	if _, err := worker.Engine.ImageInspect(ctx, byDigest); err != nil {
		t.Errorf("worker %s runs the task but has no %s: %v", worker.Name, byDigest, err)
	}
	checkEveryNodeAnswers(t, s)

	remove()
	// The tasks' containers go with the service.
	for _, n := range s.Nodes {
		if err := n.Engine.WaitNoContainers(ctx, filters.NewArgs(), 60*time.Second); err != nil {
			t.Errorf("node %s, once the service was removed: %v", n.Name, err)
		}
	}
}

// swarmTestImage is the nginx image the swarm runs: $TEST_BASE_IMAGE, else the stand-in;
// it must be on the host engine.
func swarmTestImage(ctx context.Context, t *testing.T, host *testbed.Engine) string {
	t.Helper()
	img := os.Getenv(testbed.BaseImageEnv)
	if img == "" {
		img = standinBase
	}
	if _, err := host.ImageInspect(ctx, img); err != nil {
		testbed.Unavailable(t, "no image "+img+" on the host engine", "run scripts/standin-base.sh")
	}
	return img
}

// checkOneManagerAllReady checks that the manager sees two ready nodes, one of them a manager.
func checkOneManagerAllReady(ctx context.Context, t *testing.T, s *testbed.Swarm) {
	t.Helper()
	nodes, err := s.Manager.Engine.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	managers := 0
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateReady {
			t.Errorf("node %s (%s) is %s", n.Description.Hostname, n.Status.Addr, n.Status.State)
		}
		if n.Spec.Role == swarm.NodeRoleManager {
			managers++
		}
	}
	if len(nodes) != 2 || managers != 1 {
		t.Fatalf("%d nodes with %d managers, want 2 with 1", len(nodes), managers)
	}
}

// pushFromManager gives img to the manager alone, which pushes it to reg, and returns the
// pushed image's reference by digest: the worker has nothing but the registry to get it from.
func pushFromManager(ctx context.Context, t *testing.T, s *testbed.Swarm, host *testbed.Engine, reg *testbed.Registry, img string) string {
	t.Helper()
	mgr := s.Manager.Engine
	if err := s.Manager.LoadImageFrom(ctx, host, img); err != nil {
		t.Fatal(err)
	}
	pushRef := s.RegistryAddr + "/e2e/swarm-nginx:v1"
	if err := mgr.ImageTag(ctx, img, pushRef); err != nil {
		t.Fatal(err)
	}
	auth := reg.Auth()
	digest, err := mgr.Push(ctx, pushRef, &auth)
	if err != nil {
		t.Fatalf("push from the manager: %v", err)
	}
	return s.RegistryAddr + "/e2e/swarm-nginx@" + digest
}

// createGlobalService runs image as a global service with reg's credentials, publishing
// swarmPublishedPort in host mode, and returns its ID and a remove that the test's cleanup
// also calls (once in all).
func createGlobalService(ctx context.Context, t *testing.T, mgr *testbed.Engine, reg *testbed.Registry, image string) (id string, remove func()) {
	t.Helper()
	encodedAuth, err := registry.EncodeAuthConfig(reg.Auth())
	if err != nil {
		t.Fatal(err)
	}
	created, err := mgr.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "swarm-nginx"},
		Mode:        swarm.ServiceMode{Global: &swarm.GlobalService{}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol:      swarm.PortConfigProtocolTCP,
			TargetPort:    80,
			PublishedPort: swarmPublishedPort,
			// The routing mesh needs IPVS, which this kernel may lack: each node publishes
			// its own task's port.
			PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	}, swarm.ServiceCreateOptions{EncodedRegistryAuth: encodedAuth})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("service %.12s of %s created (warnings %q)", created.ID, image, created.Warnings)
	removed := false
	remove = func() {
		if !removed {
			removed = true
			if err := mgr.ServiceRemove(context.Background(), created.ID); err != nil {
				t.Errorf("removing the service: %v", err)
			}
		}
	}
	t.Cleanup(remove)
	return created.ID, remove
}

// waitTaskOnEveryNode waits, as the program's rollout check does, until the service's
// rollout is over, and checks that a task of it then runs on every node.
func waitTaskOnEveryNode(ctx context.Context, t *testing.T, s *testbed.Swarm, service string) {
	t.Helper()
	began := time.Now()
	msg, err := subcommand.WaitRollout(ctx, s.Manager.Engine, service, 2*time.Minute)
	if err != nil {
		t.Fatalf("tasks not running on both nodes after %s: %v", time.Since(began).Round(time.Second), err)
	}
	t.Log(msg)
	state, err := subcommand.ReadRollout(ctx, s.Manager.Engine, service)
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]bool{}
	for _, task := range state.Tasks {
		if task.Have == swarm.TaskStateRunning && task.Desired == swarm.TaskStateRunning {
			running[task.Node] = true
		}
	}
	for _, n := range s.Nodes {
		if !running[n.ID] {
			t.Fatalf("no task runs on node %s once the rollout is over: %+v", n.Name, state.Tasks)
		}
	}
	t.Logf("a task runs on each node %s after the service was created", time.Since(began).Round(time.Millisecond))
}

// checkEveryNodeAnswers checks that each node serves nginx's page on its own address.
func checkEveryNodeAnswers(t *testing.T, s *testbed.Swarm) {
	t.Helper()
	for _, n := range s.Nodes {
		url := s.NodeURL(n, swarmPublishedPort)
		if _, err := testbed.WaitServed(url, 30*time.Second); err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "Welcome to nginx") {
			t.Errorf("node %s at %s answered %d %q", n.Name, url, resp.StatusCode, body)
		}
		t.Logf("node %s answers at %s", n.Name, url)
	}
}

// expectSwarmPlatform fails unless engine.PlatformsOf finds, on the manager, its platform and
// the one every node of s reports (they say x86_64; the config spells linux/amd64).
func expectSwarmPlatform(ctx context.Context, t *testing.T, s *testbed.Swarm) {
	t.Helper()
	v, err := s.Manager.Engine.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := engine.PlatformsOf(ctx, config.Config{Mode: config.ModeSwarm, DockerHost: s.Manager.Socket})
	want := platforms.Format(platforms.Normalize(platforms.Platform{OS: v.Os, Architecture: v.Arch}))
	if err != nil || got.Engine != want || !slices.Equal(got.Nodes, []string{want}) {
		t.Errorf("the swarm's platforms %+v (%v), want the manager's and every node's %q", got, err, want)
	}
}
