package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/testbed"
)

// badChangesKeepTheSiteUp: each change to app/nginx.conf that would break the site fails
// `up` before the running container is touched, and a visitor sees no failed request,
// during the failed up or after it. The error says what was wrong.
func (l *stackLife) badChangesKeepTheSiteUp(t *testing.T) {
	for _, c := range []struct{ name, from, to, says string }{
		// Refused by the build's nginx -t, naming the file and line.
		{"an unknown directive", "server_tokens off;", "server_tokens off;\n        no_such_directive on;", `unknown directive "no_such_directive" in /etc/nginx/nginx.conf:`},
		// Refused by the preflight: nginx -t passes all of these.
		{"a wrong listen port", "listen 8080 reuseport;", "listen 8081 reuseport;", "the running site was left alone"},
		{"an unreadable root", "root /usr/share/nginx/html;", "root /nonexistent;", "HTTP 404"},
		{"another page as the index", "index index.html;", "index 404.html;", "the running site was left alone"},
	} {
		t.Run(c.name, func(t *testing.T) { l.badChange(t, c.from, c.to, c.says) })
	}
	// Back to the good config: the build the site runs, so only the Image's state moves, once
	// the push check has seen app/ as it is again.
	mustUp(t, l.stack).expectSteps(t, map[string]string{pulumimock.TypeImage: "update", pulumimock.TypeCommand: "replace"})
	l.noOpUp(t)
}

// badChange makes the edit from → to in the workspace's nginx.conf, runs the up that must
// fail with a probe watching, and puts the good config back.
func (l *stackLife) badChange(t *testing.T, from, to, says string) {
	defer editConf(t, l.appFolder, from, to)()

	p := testbed.StartProbe([]string{l.url}, probeTimeout)
	r := mustFail(t, l.stack, "with "+to)
	time.Sleep(time.Second) // and after it
	expectNoFailedRequest(t, p.Stop(), "failed up")
	if !strings.Contains(r.allOutput(), says) {
		t.Errorf("the failed up does not say %q:\n%s", says, r.allOutput())
	}
	if ops := r.steps.all()[pulumimock.TypeContainer]; ops != "" {
		t.Errorf("the failed up touched the container: %s", ops)
	}
	l.expectSite(t, "after the failed up")
}

// probeTimeout is a visitor's (or a load balancer's) patience with one try.
const probeTimeout = 3 * time.Second

// expectNoFailedRequest fails if a request the probe made failed, its retry too, during what.
func expectNoFailedRequest(t *testing.T, seen testbed.ProbeResult, what string) {
	t.Helper()
	t.Logf("probe during the %s: %d requests, %d retried, %d failed", what, seen.Requests, seen.Retried, seen.Failed)
	if seen.Failed > 0 {
		t.Errorf("%d requests failed, retried too, during the %s: %q", seen.Failed, what, seen.Failures)
	}
}
