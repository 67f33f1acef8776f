//go:build linux

package e2e

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
	"github.com/example/custom-nginx/internal/testpki"
)

// TestAcceptanceSwarm runs the stack in swarm mode on a real two-node swarm through the
// real CLI: a task on each node, a rolling update that a load balancer in front sees no
// failed request of, a no-op, a build that never gets healthy stopped by the preflight on
// the manager before Swarm rolls anything, HTTPS from Swarm secrets and a new certificate
// rolled out, and destroy.
func TestAcceptanceSwarm(t *testing.T) {
	offMachineEngine.join(t)
	l := newSwarmLife(t)
	runLife(t, "the swarm stack's life", func(t *testing.T) { expectNoThrowaway(t, l.sw.Manager.Engine, "") }, []lifeStep{
		{"first up: a healthy task on each node", l.firstUp},
		{"rolling update drops no request", l.rollingUpdate},
		{"no-op up changes nothing", l.noOpUp},
		{"a build that never gets healthy leaves the service alone", l.unhealthyBuildRefused},
		{"HTTPS from Swarm secrets on every node", l.https},
		{"a new certificate rolls out with no failed request", l.rotateCertificate},
		{"destroy removes the service from both nodes", l.destroy},
	})
}

const (
	swarmRepository = "acceptance/swarm"
	swarmHostPort   = 8080 // each node has a network of its own: the default port is free
)

// swarmLife is what the steps of TestAcceptanceSwarm share: the swarm, the stack on its
// manager, where each node serves the site, and the service the first up made.
type swarmLife struct {
	ctx         context.Context
	reg         *testbed.Registry
	sw          *testbed.Swarm
	ws          *testbed.Workspace
	appFolder   string
	stack       *testbed.Stack
	nodeURLs    []string
	serviceName string
	ca          *testpki.CA  // with HTTPS: the CA the certificate is from
	leaf        testpki.Leaf // with HTTPS: the certificate served now
}

func newSwarmLife(t *testing.T) *swarmLife {
	host, base, reg := acceptanceSetup(t)
	l := &swarmLife{ctx: context.Background(), reg: reg, sw: testbed.StartSwarm(t, testbed.SwarmOptions{Registry: reg})}
	// The manager builds the image: it needs the base the build starts from.
	if err := l.sw.Manager.LoadImageFrom(l.ctx, host, base); err != nil {
		t.Fatal(err)
	}
	l.ws = newWorkspace(t, l.sw.Manager.Socket) // as a user points the CLI at a manager
	l.appFolder = filepath.Join(l.ws.Dir, "app")
	cfg := testbed.PushingTo(reg, swarmRepository, swarmHostPort, base)
	cfg["mode"] = auto.ConfigValue{Value: "swarm"}
	// The routing mesh needs IPVS, which this kernel lacks: each task publishes on its node.
	cfg["publishMode"] = auto.ConfigValue{Value: "host"}
	cfg["siteHost"] = auto.ConfigValue{Value: l.sw.Manager.Addr}
	l.stack = newStack(t, l.ws, "swarm"+randomHex(t, 4), cfg, l.sw.Manager.Engine)
	for _, n := range l.sw.Nodes {
		l.nodeURLs = append(l.nodeURLs, l.sw.NodeURL(n, swarmHostPort))
	}
	return l
}

// expectSiteOnEveryNode fails unless every node serves the workspace's site.
func (l *swarmLife) expectSiteOnEveryNode(t *testing.T, when string) {
	t.Helper()
	for _, u := range l.nodeURLs {
		expectSite(t, u, l.appFolder, when)
	}
}

// expectPageOnEveryNode fails unless every node serves exactly page.
func (l *swarmLife) expectPageOnEveryNode(t *testing.T, page []byte, when string) {
	t.Helper()
	for _, u := range l.nodeURLs {
		expectPage(t, u, page, when)
	}
}

func (l *swarmLife) firstUp(t *testing.T) {
	r := mustUp(t, l.stack)
	l.serviceName = r.out("serviceName")
	if l.serviceName != runningName(l.stack.Name) || r.out("replicas") != "2" || r.out("url") != l.nodeURLs[0] {
		t.Errorf("outputs serviceName %q replicas %q url %q", l.serviceName, r.out("replicas"), r.out("url"))
	}
	image := expectPushed(t, l.reg, swarmRepository, "v1", r.out("imageRef"))
	for _, n := range l.sw.Nodes {
		expectTask(t, n, l.serviceName, image)
	}
	l.expectSiteOnEveryNode(t, "after the first up")
}

func (l *swarmLife) rollingUpdate(t *testing.T) {
	_, after := changePage(t, l.ws, "rolled out node by node")
	p := testbed.StartProbe(l.nodeURLs, probeTimeout)
	r := mustUp(t, l.stack)
	seen := p.Stop()
	r.expectSteps(t, map[string]string{pulumimock.TypeImage: "update", pulumimock.TypeRegistryImage: "replace", pulumimock.TypeService: "update", pulumimock.TypeCommand: "replace,replace,replace,replace"}) // the push check, the preflight, the rollout wait and the smoke check
	expectNoFailedRequest(t, seen, "rolling update")
	if seen.Requests < 10 {
		t.Errorf("the probe made only %d requests: it did not watch the update", seen.Requests)
	}
	l.expectPageOnEveryNode(t, after, "after the rolling update")
}

func (l *swarmLife) noOpUp(t *testing.T) {
	if r := up(t, l.stack, optup.ExpectNoChanges()); r.err != nil {
		// Show which inputs the provider reads back differently.
		_, _ = l.stack.Preview(l.ctx, optpreview.Diff(), optpreview.ProgressStreams(testWriter{t}))
		t.Fatalf("no-op up: %v", r.err)
	}
}

func (l *swarmLife) unhealthyBuildRefused(t *testing.T) {
	served, err := servedPage(l.nodeURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	before := l.inspectService(t)
	restore := l.breakHealthcheck(t)
	p := testbed.StartProbe(l.nodeURLs, probeTimeout)
	r := up(t, l.stack)
	seen := p.Stop()
	if r.err == nil || !strings.Contains(r.allOutput(), "the running site was left alone") || !strings.Contains(r.allOutput(), "HTTP 500") {
		t.Errorf("up of a build whose healthcheck never passes did not fail in the preflight, naming /healthz's answer: %v", r.err)
	}
	if ops := r.steps.all()[pulumimock.TypeService]; ops != "" {
		t.Errorf("the failed up touched the service: %s", ops)
	}
	// The spec, not the version: Swarm bumps that itself when it records the end of the
	// last rolling update, an update delay after its last task.
	after := l.inspectService(t)
	if !reflect.DeepEqual(after.Spec, before.Spec) {
		t.Errorf("the service's spec changed (image %s → %s): Swarm was asked to roll out a build the preflight refused",
			before.Spec.TaskTemplate.ContainerSpec.Image, after.Spec.TaskTemplate.ContainerSpec.Image)
	}
	expectNoFailedRequest(t, seen, "failed up")
	l.expectPageOnEveryNode(t, served, "after the refused build")

	restore()
	mustUp(t, l.stack)
	l.expectSiteOnEveryNode(t, "after the fix")
}

func (l *swarmLife) inspectService(t *testing.T) swarm.Service {
	t.Helper()
	service, _, err := l.sw.Manager.Engine.ServiceInspectWithRaw(l.ctx, l.serviceName, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return service
}

func (l *swarmLife) breakHealthcheck(t *testing.T) (restore func()) {
	t.Helper()
	return editConf(t, l.appFolder, `return 200 "ok\n";`, `return 500 "broken\n";`)
}

func (l *swarmLife) destroy(t *testing.T) {
	if _, err := l.stack.Destroy(l.ctx, optdestroy.ProgressStreams(testWriter{t})); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.sw.Nodes {
		if err := n.Engine.WaitNoContainers(l.ctx, serviceFilter(l.serviceName), 30*time.Second); err != nil {
			t.Fatalf("containers of the service on %s after destroy: %v", n.Name, err)
		}
	}
}

func serviceFilter(service string) filters.Args {
	return filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+service))
}

// expectTask fails unless node runs one healthy task of service, from image.
func expectTask(t *testing.T, node testbed.SwarmNode, service, image string) {
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
	if !sameReference(inspect.Config.Image, image) {
		t.Errorf("the task on %s runs %s, want the pushed %s", node.Name, inspect.Config.Image, image)
	}
	if inspect.Config.User != "101:101" || !inspect.HostConfig.ReadonlyRootfs {
		t.Errorf("the task on %s runs as %q, read-only root %v: not hardened", node.Name, inspect.Config.User, inspect.HostConfig.ReadonlyRootfs)
	}
}

// sameReference reports whether two image references name the same image once
// normalized: Swarm gives a task docker.io's images by their familiar names
// (alice/custom-nginx@…).
func sameReference(a, b string) bool {
	na, errA := reference.ParseNormalizedNamed(a)
	nb, errB := reference.ParseNormalizedNamed(b)
	return errA == nil && errB == nil && na.String() == nb.String()
}

// swarmHTTPSPort is where each node serves HTTPS: httpsPort's default.
const swarmHTTPSPort = 8443

// httpsURLs are where the nodes serve HTTPS.
func (l *swarmLife) httpsURLs() []string {
	var urls []string
	for _, n := range l.sw.Nodes {
		urls = append(urls, "https://"+net.JoinHostPort(n.Addr, strconv.Itoa(swarmHTTPSPort))+"/")
	}
	return urls
}

// useCertificate gives the stack a new certificate of the test CA for every node's address.
func (l *swarmLife) useCertificate(t *testing.T) {
	t.Helper()
	var addrs []string
	for _, n := range l.sw.Nodes {
		addrs = append(addrs, n.Addr)
	}
	l.leaf = l.ca.IssueNow(t, addrs...)
	if err := l.stack.SetAllConfig(l.ctx, auto.ConfigMap{"tlsCertificate": {Value: l.leaf.CertPEM},
		"tlsKey": {Value: l.leaf.KeyPEM, Secret: true}, "tlsTrustedCA": {Value: l.ca.PEM}}); err != nil {
		t.Fatal(err)
	}
}

// expectHTTPSOnEveryNode fails unless every node serves the page over HTTPS under l.leaf.
func (l *swarmLife) expectHTTPSOnEveryNode(t *testing.T, when string) {
	t.Helper()
	for _, u := range l.httpsURLs() {
		expectHTTPSPage(t, l.ca, l.leaf, u, l.appFolder, when)
	}
}

// https: with a certificate, each task gets it as Swarm secrets and serves HTTPS; the url
// is https. (Plain HTTP turns into a redirect: no probe watches this change.)
func (l *swarmLife) https(t *testing.T) {
	l.ca = testpki.NewCA(t, "custom-nginx swarm test CA")
	l.useCertificate(t)
	r := mustUp(t, l.stack)
	if want := l.httpsURLs()[0]; r.out("url") != want {
		t.Errorf("url %q, want %q", r.out("url"), want)
	}
	l.expectHTTPSOnEveryNode(t, "after HTTPS was turned on")
}

// rotateCertificate: new secrets, and a rolling update that a load balancer in front sees
// no failed HTTPS request of.
func (l *swarmLife) rotateCertificate(t *testing.T) {
	l.useCertificate(t)
	p := testbed.StartProbeTrusting(l.httpsURLs(), probeTimeout, l.ca.Pool())
	r := mustUp(t, l.stack)
	seen := p.Stop()
	if ops := r.steps.all()[pulumimock.TypeImage]; ops != "" {
		t.Errorf("a new certificate rebuilt the image: %s", ops)
	}
	expectNoFailedRequest(t, seen, "certificate rotation")
	l.expectHTTPSOnEveryNode(t, "after the rotation")
	// The service names its secrets; their data is in no inspect.
	_, raw, err := l.sw.Manager.Engine.ServiceInspectWithRaw(l.ctx, l.serviceName, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(".pem")) || bytes.Contains(raw, []byte(keyLine(l.leaf.KeyPEM))) {
		t.Errorf("docker service inspect names no secret file, or shows the key:\n%s", raw)
	}
}
