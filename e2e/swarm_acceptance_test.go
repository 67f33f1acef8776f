//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/testsupport"
)

const typeService = "docker:index/service:Service"

// probeTimeout is a load balancer's patience with one node: a few seconds per try.
const probeTimeout = 3 * time.Second

// TestAcceptanceSwarm runs the stack in swarm mode on a real two-node swarm through the
// real CLI: a task on each node, a rolling update that a load balancer in front sees no
// failed request of, a no-op, a rollout Swarm rolls back, and destroy.
func TestAcceptanceSwarm(t *testing.T) {
	started := time.Now()
	host, base, reg := acceptanceSetup(t)
	ctx := context.Background()
	sw := testsupport.StartSwarm(t, reg)
	// The manager builds the image: it needs the base the build starts from.
	if err := sw.Manager.LoadImageFrom(ctx, host, base); err != nil {
		t.Fatal(err)
	}

	w := newWorkspace(t)
	w.env["DOCKER_HOST"] = sw.Manager.Socket // as a user points the CLI at a manager
	appFolder := filepath.Join(w.dir, "app")
	stackName := "swarm" + randomHex(t, 4)
	const hostPort = 8080 // each node has a network of its own: the default port is free
	stack := w.stack(t, stackName, auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: reg.Password, Secret: true},
		"repository":       {Value: "acceptance/swarm"},
		"hostPort":         {Value: fmt.Sprint(hostPort)},
		"baseImage":        {Value: base},
		"mode":             {Value: "swarm"},
		// The routing mesh needs IPVS, which this kernel lacks: each task publishes on its node.
		"publishMode": {Value: "host"},
		"siteHost":    {Value: sw.Manager.Addr},
	})
	var nodeURLs []string
	for _, n := range sw.Nodes {
		nodeURLs = append(nodeURLs, sw.NodeURL(n, hostPort))
	}
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	var serviceName string

	step("first up: a healthy task on each node", func(t *testing.T) {
		r := mustUp(t, stack)
		serviceName = r.out("serviceName")
		if serviceName != runningName(stackName) || r.out("replicas") != "2" || r.out("url") != nodeURLs[0] {
			t.Errorf("outputs serviceName %q replicas %q url %q", serviceName, r.out("replicas"), r.out("url"))
		}
		digest, err := reg.Digest(ctx, "acceptance/swarm", "v1")
		if err != nil {
			t.Fatal(err)
		}
		image := reg.Addr + "/acceptance/swarm@" + digest
		if r.out("imageRef") != image {
			t.Errorf("imageRef %q, registry has %q", r.out("imageRef"), image)
		}
		for _, n := range sw.Nodes {
			expectTask(t, n, serviceName, image)
		}
		for _, u := range nodeURLs {
			if err := testsupport.CheckSite(u, appFolder); err != nil {
				t.Fatal(err)
			}
		}
	})

	step("rolling update drops no request", func(t *testing.T) {
		_, after := w.changePage(t, "rolled out node by node")
		p := testsupport.StartProbe(nodeURLs, probeTimeout)
		r := mustUp(t, stack)
		seen := p.Stop()
		r.expectSteps(t, map[string]string{typeImage: "update", typeRegistryImage: "replace", typeService: "update", typeCommand: "replace,replace"}) // the rollout gate and the smoke check
		t.Logf("probe during the rolling update: %d requests, %d retried on the other node, %d failed", seen.Requests, seen.Retried, seen.Failed)
		if seen.Failed > 0 {
			t.Errorf("%d requests failed on both nodes during the rolling update: %q", seen.Failed, seen.Failures)
		}
		if seen.Requests < 10 {
			t.Errorf("the probe made only %d requests: it did not watch the update", seen.Requests)
		}
		for _, u := range nodeURLs {
			expectPage(t, u, after, "after the rolling update")
		}
	})

	step("no-op up changes nothing", func(t *testing.T) {
		if r := up(t, stack, optup.ExpectNoChanges()); r.err != nil {
			// Show which inputs the provider reads back differently.
			_, _ = stack.Preview(ctx, optpreview.Diff(), optpreview.ProgressStreams(testWriter{t}))
			t.Fatalf("no-op up: %v", r.err)
		}
	})

	step("a rollout that never gets healthy is rolled back", func(t *testing.T) {
		served, err := servedPage(nodeURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		before, _, err := sw.Manager.Engine.ServiceInspectWithRaw(ctx, serviceName, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The same page, but /healthz fails: every new task stays unhealthy.
		conf := filepath.Join(appFolder, "nginx.conf")
		good, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(good), `return 200 "ok\n";`, `return 500 "broken\n";`, 1)
		if broken == string(good) {
			t.Fatal("nginx.conf has no /healthz answer to break")
		}
		if err := os.WriteFile(conf, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		p := testsupport.StartProbe(nodeURLs, probeTimeout)
		r := up(t, stack)
		seen := p.Stop()
		t.Logf("probe during the failed rollout: %d requests, %d retried on the other node, %d failed", seen.Requests, seen.Retried, seen.Failed)
		// The provider says "service rollback completed: update rolled back due to failure …"
		// or "service rollback completed: rollback completed", depending on Swarm's message.
		if r.err == nil || !strings.Contains(r.allOutput(), "rollback completed") {
			t.Errorf("up of a build whose healthcheck never passes did not fail saying it was rolled back: %v", r.err)
		}
		after, _, err := sw.Manager.Engine.ServiceInspectWithRaw(ctx, serviceName, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.UpdateStatus == nil || !strings.HasPrefix(string(after.UpdateStatus.State), "rollback") {
			t.Errorf("Swarm did not roll the service back: update status %+v", after.UpdateStatus)
		}
		if got, want := after.Spec.TaskTemplate.ContainerSpec.Image, before.Spec.TaskTemplate.ContainerSpec.Image; got != want {
			t.Errorf("the service runs %s after the rollback, want the old %s", got, want)
		}
		if seen.Failed > 0 {
			t.Errorf("%d requests failed on both nodes during the failed rollout: %q", seen.Failed, seen.Failures)
		}
		for _, u := range nodeURLs {
			expectPage(t, u, served, "after the rollback")
		}

		if err := os.WriteFile(conf, good, 0o644); err != nil {
			t.Fatal(err)
		}
		mustUp(t, stack)
		for _, u := range nodeURLs {
			if err := testsupport.CheckSite(u, appFolder); err != nil {
				t.Fatalf("after the fix: %v", err)
			}
		}
	})

	step("destroy removes the service from both nodes", func(t *testing.T) {
		if _, err := stack.Destroy(ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
			t.Fatal(err)
		}
		for _, n := range sw.Nodes {
			deadline := time.Now().Add(30 * time.Second)
			for {
				left, err := n.Engine.ContainerList(ctx, container.ListOptions{All: true, Filters: serviceFilter(serviceName)})
				if err != nil {
					t.Fatal(err)
				}
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d containers of the service left on %s after destroy", len(left), n.Name)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
	t.Logf("the swarm stack's life took %s", time.Since(started).Round(time.Second))
}

func serviceFilter(service string) filters.Args {
	return filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+service))
}

// expectTask fails unless node runs one healthy task of service, from image.
func expectTask(t *testing.T, node testsupport.SwarmNode, service, image string) {
	t.Helper()
	ctx := context.Background()
	running, err := node.Engine.ContainerList(ctx, container.ListOptions{Filters: serviceFilter(service)})
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 1 {
		t.Fatalf("%s runs %d tasks of %s, want 1", node.Name, len(running), service)
	}
	inspect, err := node.Engine.ContainerInspect(ctx, running[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if h := inspect.State.Health; h == nil || h.Status != container.Healthy {
		t.Errorf("the task on %s is not healthy: %+v", node.Name, inspect.State.Health)
	}
	if inspect.Config.Image != image {
		t.Errorf("the task on %s runs %s, want the pushed %s", node.Name, inspect.Config.Image, image)
	}
	if inspect.Config.User != "101:101" || !inspect.HostConfig.ReadonlyRootfs {
		t.Errorf("the task on %s runs as %q, read-only root %v: not hardened", node.Name, inspect.Config.User, inspect.HostConfig.ReadonlyRootfs)
	}
}
