package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/testbed"
)

// pulumiRuns times what a user waits for: the first `pulumi up`, a no-op `up`, a page
// change (and how long the page is not served meanwhile, seen by a probe) and
// `destroy`, on a copy of the project with a local backend and registry; where the first
// up's and the page change's time goes, step by step; what visitors under load see through
// an up; what the running site costs at rest; and the floor, the docker CLI doing the same
// job into the same registry. The stack and the images its ups built on e are removed
// afterwards.
func pulumiRuns(t *table, e *testbed.Engine, base string, o options) (err error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "custom-nginx-bench-stack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w, err := testbed.NewWorkspace(".", dir, "bench", e.DaemonHost())
	if err != nil {
		return err
	}
	reg, err := testbed.StartRegistry("bench", fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	defer reg.Stop()
	port, err := testbed.FreePort()
	if err != nil {
		return err
	}
	stack, err := w.NewStack(ctx, "bench", testbed.PushingTo(reg, "bench/custom-nginx", port, base), e)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stack.Remove(ctx)) }()
	life := &stackLife{ctx: ctx, t: t, e: e, w: w, stack: stack, url: fmt.Sprintf("http://127.0.0.1:%d/", port), o: o}
	if err := life.run(); err != nil {
		return err
	}
	f, err := timeFloor(ctx, e, reg, base, life.changedPage)
	if err != nil {
		return err
	}
	f.addRows(t, life.firstUp, life.pageChange)
	return nil
}

// stackLife is the bench's stack from its first up to its destroy, and what the floor is
// compared with afterwards.
type stackLife struct {
	ctx   context.Context
	t     *table
	e     *testbed.Engine
	w     *testbed.Workspace
	stack *testbed.Stack
	url   string // the site's, as visitors reach it
	o     options

	firstUp, pageChange time.Duration
	changedPage         string // the page after the (timed) page change: the floor deploys it too
}

// run times the stack's first up, no-op ups and a page change with where their time goes,
// then ups under load, the idle cost of the running site, and destroy.
func (l *stackLife) run() error {
	first, change, err := l.timeUps()
	if err != nil {
		return err
	}
	first.addRows(l.t, "first up", false)
	change.addRows(l.t, "page change", true)
	if err := l.underLoad(); err != nil {
		return err
	}
	running, stopped, err := idleCost(l.ctx, l.e, l.stack, l.url, l.o.idle)
	if err != nil {
		return fmt.Errorf("idle cost: %w", err)
	}
	addIdleRows(l.t, running, stopped, l.o.idle)
	begin := time.Now()
	if _, err := l.stack.Destroy(l.ctx); err != nil {
		return fmt.Errorf("pulumi destroy: %w", err)
	}
	l.t.add("pulumi destroy", time.Since(begin).Round(10*time.Millisecond).String(), "")
	return nil
}

// timeUps runs and times the first up, the no-op ups and a page change, with a probe.
func (l *stackLife) timeUps() (first, change *stepClock, err error) {
	first, err = timedUp(l.ctx, l.stack)
	if err != nil {
		return nil, nil, fmt.Errorf("first pulumi up: %w", err)
	}
	l.firstUp = first.total
	l.t.add("pulumi up, first (build, preflight, push, run, smoke check)", first.total.Round(10*time.Millisecond).String(), "warm Go build cache; registry on 127.0.0.1")

	var noop []time.Duration
	for range l.o.noops {
		begin := time.Now()
		if _, err := l.stack.Up(l.ctx, optup.ExpectNoChanges()); err != nil {
			return nil, nil, fmt.Errorf("no-op pulumi up: %w", err)
		}
		noop = append(noop, time.Since(begin))
	}
	if len(noop) > 0 {
		l.t.add("pulumi up, no-op", stats(noop), fmt.Sprintf("%d runs, --expect-no-changes", l.o.noops))
	}

	if l.changedPage, err = editPage(l.w); err != nil {
		return nil, nil, err
	}
	probe := testbed.StartProbe([]string{l.url}, time.Second)
	change, err = timedUp(l.ctx, l.stack)
	outage := probe.Stop().LongestGap
	if err != nil {
		return nil, nil, fmt.Errorf("pulumi up after a page change: %w", err)
	}
	l.pageChange = change.total
	l.t.add("pulumi up, page change (build, preflight, push, replace, check)", change.total.Round(10*time.Millisecond).String(), "")
	l.t.add("page not served during that change", outage.Round(10*time.Millisecond).String(), fmt.Sprintf("longest gap seen by a probe every %s (1 s per try at most): the new nginx starts beside the old one", testbed.ProbeInterval))
	return first, change, nil
}

// underLoad runs wrk and the probe through a no-op up, the reference, and through another
// page change: the first page change stays unloaded, so that its steps' times are the
// machine's and not wrk's.
func (l *stackLife) underLoad() error {
	if _, err := exec.LookPath("wrk"); err != nil {
		l.t.add("wrk through an up", "skipped", "no wrk (apt-get install -y wrk)")
		return nil
	}
	noop, err := upUnderLoad(l.ctx, l.stack, l.url, l.o.conns, l.o.wrkDuringUp, optup.ExpectNoChanges())
	if err != nil {
		return fmt.Errorf("no-op pulumi up under wrk: %w", err)
	}
	if _, err := editPage(l.w); err != nil {
		return err
	}
	change, err := upUnderLoad(l.ctx, l.stack, l.url, l.o.conns, l.o.wrkDuringUp)
	if err != nil {
		return fmt.Errorf("page change under wrk: %w", err)
	}
	noop.addRows(l.t, "a no-op up (reference)", l.o.conns, l.o.wrkDuringUp)
	change.addRows(l.t, "a page change", l.o.conns, l.o.wrkDuringUp)
	return nil
}

// editPage adds a line to the workspace's page and returns the new page. The line is new
// to every run, so no build cache of an earlier bench holds the changed page.
func editPage(w *testbed.Workspace) (string, error) {
	old, err := os.ReadFile(w.Page())
	if err != nil {
		return "", err
	}
	line := fmt.Sprintf("<p>bench %d</p>\n</main>", time.Now().UnixNano())
	changed := strings.Replace(string(old), "</main>", line, 1)
	if changed == string(old) {
		return "", fmt.Errorf("%s has no </main> to add a line before", w.Page())
	}
	return changed, os.WriteFile(w.Page(), []byte(changed), 0o644)
}
