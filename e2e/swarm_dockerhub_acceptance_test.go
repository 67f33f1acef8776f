//go:build linux

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/example/custom-nginx/internal/testbed"
)

// TestAcceptanceSwarmDockerHub runs the stack in swarm mode with the project's defaults,
// as a Docker Hub user would, on a two-node swarm whose nodes reach the tests' Docker Hub
// under Hub's names and trust its CA: the manager builds from the base it pulls from the
// Hub and pushes, for amd64 and arm64 under one tag (platforms), and each node pulls the
// index's digest, and its own platform's image, with the service's credentials for
// docker.io. The CLI, the plugins and the program run inside the Hub's namespaces,
// which are on the swarm's bridge.
func TestAcceptanceSwarmDockerHub(t *testing.T) {
	offMachineEngine.join(t)
	l := newSwarmHubLife(t)
	runLife(t, "the Docker Hub swarm stack's life", func(t *testing.T) { expectNoThrowaway(t, l.swarm.sw.Manager.Engine, "") }, []lifeStep{
		{"first up: each node pulls the digest from the Hub", l.firstUp},
		{"the worker, which never built, pulls the tag with the user's credentials", l.workerPullsTag},
		{"a page change rolls out through the Hub, dropping no request", l.rollingUpdate},
		{"no-op up changes nothing", l.noOpUp},
		{"the password is in plain text nowhere", l.hub.noPlainPassword},
		{"destroy removes the service from both nodes", l.swarm.destroy},
	})
}

// swarmHubLife is what the steps of TestAcceptanceSwarmDockerHub share: one stack, seen
// as a Hub stack (hub) and as a swarm stack (swarm).
type swarmHubLife struct {
	hub   *hubLife
	swarm *swarmLife
}

func newSwarmHubLife(t *testing.T) *swarmHubLife {
	requireToolchain(t)
	hub := &hubLife{ctx: t.Context(), accounts: hubAccounts(t)}
	hub.hub = testbed.StartDockerHub(t, testbed.HubOptions{Accounts: hub.accounts, AppDir: appDir, Arm64: true})
	sw := &swarmLife{ctx: hub.ctx, sw: testbed.StartSwarm(t, testbed.SwarmOptions{Hub: hub.hub})}
	cli, err := hub.hub.PulumiCommand()
	if err != nil {
		t.Fatal(err)
	}
	hub.ws = newWorkspace(t, sw.sw.Manager.Socket) // as a user points the CLI at a manager
	hub.appFolder = filepath.Join(hub.ws.Dir, "app")
	// The credentials and what swarm mode needs here: registryServer, repository and
	// baseImage keep Pulumi.yaml's defaults.
	hub.stack = newStack(t, hub.ws, "swarmhub"+randomHex(t, 4), auto.ConfigMap{
		"registryUsername": {Value: hubUser},
		"registryPassword": {Value: hub.password(), Secret: true},
		"hostPort":         {Value: fmt.Sprint(swarmHostPort)},
		"mode":             {Value: "swarm"},
		"publishMode":      {Value: "host"}, // as TestAcceptanceSwarm: no IPVS here
		"siteHost":         {Value: sw.sw.Manager.Addr},
		// The arm64 image is built, not run: no emulation needed.
		"platforms": {Value: "linux/amd64,linux/arm64"},
	}, sw.sw.Manager.Engine, auto.Pulumi(cli))
	sw.ws, sw.appFolder, sw.stack = hub.ws, hub.appFolder, hub.stack
	for _, n := range sw.sw.Nodes {
		sw.nodeURLs = append(sw.nodeURLs, sw.sw.NodeURL(n, swarmHostPort))
	}
	hub.url = sw.nodeURLs[0]
	return &swarmHubLife{hub: hub, swarm: sw}
}

// hubRef is the reference a node pulls for what the Hub holds under the user's tag v1: the
// index.
func (l *swarmHubLife) hubRef(t *testing.T) string {
	return "docker.io/" + hubUser + "/custom-nginx@" + l.hub.pushedDigest(t)
}

// expectTasksFromHub fails unless each node runs a healthy task of the stack's service
// from the digest the Hub holds, and the token service granted the user pulls of it.
func (l *swarmHubLife) expectTasksFromHub(t *testing.T, r run, grantsBefore int) {
	t.Helper()
	ref := l.hubRef(t)
	if got := r.out("imageRef"); got != ref {
		t.Errorf("imageRef %s, want %s (the digest the Hub reports)", got, ref)
	}
	for _, n := range l.swarm.sw.Nodes {
		expectTask(t, n, l.swarm.serviceName, ref)
	}
	if grants := l.pullGrants(); grants <= grantsBefore {
		t.Errorf("the token service granted %s no pull of %s/custom-nginx during the up: the nodes did not pull from the Hub", hubUser, hubUser)
	}
	l.swarm.expectSiteOnEveryNode(t, "after the up")
}

// pullGrants counts the tokens granted to the user for pulling (not pushing) the stack's
// repository: what a node asks for, where the push asks for pull and push.
func (l *swarmHubLife) pullGrants() int {
	n := 0
	for _, line := range l.hub.hub.Tokens.Log() {
		if strings.Contains(line, "/token for "+hubUser+" (") && strings.Contains(line, "granted [repository:"+hubUser+"/custom-nginx:pull];") {
			n++
		}
	}
	return n
}

func (l *swarmHubLife) firstUp(t *testing.T) {
	grants := l.pullGrants()
	r := l.hub.mustUp(t)
	expectChanges(t, r, map[string]int{"create": swarmResources})
	l.swarm.serviceName = r.out("serviceName")
	l.expectTasksFromHub(t, r, grants)
}

// workerPullsTag: the worker never built the image; with the user's credentials it pulls
// the tag v1 from the Hub, and gets the image its task runs.
func (l *swarmHubLife) workerPullsTag(t *testing.T) {
	worker := l.swarm.sw.Nodes[1]
	tag := "docker.io/" + hubUser + "/custom-nginx:v1"
	if err := worker.Engine.Pull(l.hub.ctx, tag, l.hub.hub.Auth(hubUser)); err != nil {
		t.Fatalf("the worker pulling %s from the Hub: %v", tag, err)
	}
	pulled, err := worker.Engine.ImageInspect(l.hub.ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := worker.Engine.ContainerList(l.hub.ctx, container.ListOptions{Filters: serviceFilter(l.swarm.serviceName)})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("the worker's tasks of %s: %d (%v)", l.swarm.serviceName, len(tasks), err)
	}
	if tasks[0].ImageID != pulled.ID {
		t.Errorf("the tag pulled on the worker is %s, its task runs %s", pulled.ID, tasks[0].ImageID)
	}
}

func (l *swarmHubLife) rollingUpdate(t *testing.T) {
	before := l.hubRef(t)
	_, after := changePage(t, l.hub.ws, "rolled out through the Hub")
	grants := l.pullGrants()
	p := testbed.StartProbe(l.swarm.nodeURLs, probeTimeout)
	r := l.hub.mustUp(t)
	seen := p.Stop()
	// Both images and the service updated; the push check, the preflight, both pushes, the
	// index, the rollout wait and the smoke check replaced.
	expectChanges(t, r, map[string]int{"update": 3, "replace": 7, "same": 2})
	expectNoFailedRequest(t, seen, "rolling update through the Hub")
	if r.out("imageRef") == before {
		t.Errorf("imageRef still %s after a page change", before)
	}
	l.expectTasksFromHub(t, r, grants)
	l.swarm.expectPageOnEveryNode(t, after, "after the rolling update")
}

// noOpUp is hubLife's, not swarmLife's: swarmLife's shows a diff with a preview, which
// waits for the Automation API's events, and the CLI inside the Hub's namespace cannot
// send them.
func (l *swarmHubLife) noOpUp(t *testing.T) {
	expectChanges(t, l.hub.mustUp(t), map[string]int{"same": swarmResources})
}

// swarmResources is what the swarm stack with two platforms is made of: the stack, the
// component, the push check, two images and their pushes, the index, the preflight, the
// service, the rollout wait and the smoke check.
const swarmResources = 12
