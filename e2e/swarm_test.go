//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"

	"github.com/example/custom-nginx/internal/testsupport"
)

// standinBase is the offline nginx image scripts/standin-base.sh builds on the host engine.
const standinBase = "custom-nginx-test/nginx-standin:local"

// TestTwoNodeSwarm builds a real two-node swarm (two engines in network namespaces of their
// own), pushes an image from the manager to the test registry and runs it as a global
// service that publishes its port in host mode: every node pulls it with the registry's
// credentials and answers on its own address.
func TestTwoNodeSwarm(t *testing.T) {
	host := testsupport.RequireEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := os.Getenv(testsupport.BaseImageEnv)
	if img == "" {
		img = standinBase
	}
	if _, err := host.ImageInspect(ctx, img); err != nil {
		testsupport.Unavailable(t, "no image "+img+" on the host engine", "run scripts/standin-base.sh")
	}
	reg, err := testsupport.StartRegistry("swarm", "e2e-"+randomHex(t, 16))
	if err != nil {
		testsupport.Unavailable(t, err.Error(), "apt-get install -y docker-registry")
	}
	t.Cleanup(reg.Stop)

	s := testsupport.StartSwarm(t, reg)

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

	// Only the manager gets the image from the host; it pushes it, and the worker has
	// nothing but the registry to get it from.
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
	byDigest := s.RegistryAddr + "/e2e/swarm-nginx@" + digest
	worker := s.Nodes[1]
	if _, err := worker.Engine.ImageInspect(ctx, byDigest); err == nil {
		t.Fatalf("worker %s already has %s before the service runs", worker.Name, byDigest)
	}

	encodedAuth, err := registry.EncodeAuthConfig(auth)
	if err != nil {
		t.Fatal(err)
	}
	const publishedPort = 8080
	created, err := mgr.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "swarm-nginx"},
		Mode:        swarm.ServiceMode{Global: &swarm.GlobalService{}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: byDigest},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol:      swarm.PortConfigProtocolTCP,
			TargetPort:    80,
			PublishedPort: publishedPort,
			// The routing mesh needs IPVS, which this kernel may lack: each node publishes
			// its own task's port.
			PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	}, swarm.ServiceCreateOptions{EncodedRegistryAuth: encodedAuth})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("service %.12s of %s created (warnings %q)", created.ID, byDigest, created.Warnings)
	removed := false
	remove := func() {
		if !removed {
			removed = true
			if err := mgr.ServiceRemove(context.Background(), created.ID); err != nil {
				t.Errorf("removing the service: %v", err)
			}
		}
	}
	t.Cleanup(remove)

	// A running task on every node.
	began := time.Now()
	for {
		tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", created.ID))})
		if err != nil {
			t.Fatal(err)
		}
		running := map[string]bool{}
		var states []string
		for _, task := range tasks {
			states = append(states, string(task.Status.State)+" "+task.Status.Err)
			if task.Status.State == swarm.TaskStateRunning && task.DesiredState == swarm.TaskStateRunning {
				running[task.NodeID] = true
			}
		}
		if running[s.Nodes[0].ID] && running[s.Nodes[1].ID] {
			break
		}
		if ctx.Err() != nil || time.Since(began) > 2*time.Minute {
			t.Fatalf("tasks not running on both nodes after %s: %q", time.Since(began).Round(time.Second), states)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a task runs on each node %s after the service was created", time.Since(began).Round(time.Millisecond))
	if _, err := worker.Engine.ImageInspect(ctx, byDigest); err != nil {
		t.Errorf("worker %s runs the task but has no %s: %v", worker.Name, byDigest, err)
	}

	// Each node answers on its own address.
	for _, n := range s.Nodes {
		url := s.NodeURL(n, publishedPort)
		if _, err := testsupport.WaitServed(url, 30*time.Second); err != nil {
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

	remove()
	// The tasks' containers go with the service.
	for _, n := range s.Nodes {
		if err := waitNoContainers(ctx, n.Engine, 60*time.Second); err != nil {
			t.Errorf("node %s: %v", n.Name, err)
		}
	}
}

func waitNoContainers(ctx context.Context, e *testsupport.Engine, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		list, err := e.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d containers left %s after the service was removed", len(list), limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
