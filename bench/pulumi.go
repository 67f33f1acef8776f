package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/testsupport"
)

// pulumiRuns times what a user waits for: the first `pulumi up`, a no-op `up`, a page
// change (and how long the page is not served meanwhile, seen by a probe) and
// `destroy`, on a copy of the project with a local backend and registry. The stack and
// the images its ups built on e are removed afterwards.
func pulumiRuns(t *table, e *testsupport.Engine, base string, noops int) (err error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "custom-nginx-bench-stack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w, err := testsupport.NewWorkspace(".", dir, "bench", e.DaemonHost())
	if err != nil {
		return err
	}
	reg, err := testsupport.StartRegistry("bench", fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	defer reg.Stop()
	port, err := testsupport.FreePort()
	if err != nil {
		return err
	}
	stack, err := w.NewStack(ctx, "bench", auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: reg.Password, Secret: true},
		"repository":       {Value: "bench/custom-nginx"},
		"hostPort":         {Value: fmt.Sprint(port)},
		"baseImage":        {Value: base},
	}, e)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stack.Remove(ctx)) }()
	return timeStackLife(ctx, t, w, stack, port, noops)
}

// timeStackLife runs and times the stack's first up, no-op ups, a page change and destroy.
func timeStackLife(ctx context.Context, t *table, w *testsupport.Workspace, stack *testsupport.Stack, port, noops int) error {
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	up := func() error { _, err := stack.Up(ctx); return err }

	first, err := timed(up)
	if err != nil {
		return fmt.Errorf("first pulumi up: %w", err)
	}
	t.add("pulumi up, first (build, preflight, push, run, smoke check)", first.Round(10*time.Millisecond).String(), "warm Go build cache; registry on 127.0.0.1")

	var noop []time.Duration
	for range noops {
		d, err := timed(func() error { _, err := stack.Up(ctx, optup.ExpectNoChanges()); return err })
		if err != nil {
			return fmt.Errorf("no-op pulumi up: %w", err)
		}
		noop = append(noop, d)
	}
	t.add("pulumi up, no-op", stats(noop), fmt.Sprintf("%d runs, --expect-no-changes", noops))

	old, err := os.ReadFile(w.Page())
	if err != nil {
		return err
	}
	changed := strings.Replace(string(old), "</main>", "<p>bench</p>\n</main>", 1)
	if err := os.WriteFile(w.Page(), []byte(changed), 0o644); err != nil {
		return err
	}
	probe := testsupport.StartProbe([]string{fmt.Sprintf("http://127.0.0.1:%d/", port)}, time.Second)
	change, err := timed(up)
	outage := probe.Stop().LongestGap
	if err != nil {
		return fmt.Errorf("pulumi up after a page change: %w", err)
	}
	t.add("pulumi up, page change (build, preflight, push, replace, check)", change.Round(10*time.Millisecond).String(), "")
	t.add("page not served during that change", outage.Round(10*time.Millisecond).String(), fmt.Sprintf("longest gap seen by a probe every %s (1 s per try at most): the new nginx starts beside the old one", testsupport.ProbeInterval))

	destroy, err := timed(func() error { _, err := stack.Destroy(ctx); return err })
	if err != nil {
		return fmt.Errorf("pulumi destroy: %w", err)
	}
	t.add("pulumi destroy", destroy.Round(10*time.Millisecond).String(), "")
	return nil
}
