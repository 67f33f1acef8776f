package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/testsupport"
)

// pulumiRuns times what a user waits for: the first `pulumi up`, a no-op `up`, a page
// change (and how long the page is not served meanwhile, seen by a 50 ms probe) and
// `destroy`, on a copy of the project with a local backend and registry.
func pulumiRuns(t *table, base string, noops int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "custom-nginx-bench-stack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	project, backend := filepath.Join(dir, "project"), filepath.Join(dir, "backend")
	if err := testsupport.CopyProject(".", project); err != nil {
		return err
	}
	if err := os.Mkdir(backend, 0o755); err != nil {
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
	stack, err := auto.UpsertStackLocalSource(ctx, "bench", project, auto.SecretsProvider("passphrase"),
		auto.EnvVars(map[string]string{
			"PULUMI_BACKEND_URL":       "file://" + backend,
			"PULUMI_CONFIG_PASSPHRASE": "bench",
			"PULUMI_SKIP_UPDATE_CHECK": "true",
		}))
	if err != nil {
		return err
	}
	defer func() {
		_, _ = stack.Destroy(ctx)
		_ = stack.Workspace().RemoveStack(ctx, "bench")
	}()
	err = stack.SetAllConfig(ctx, auto.ConfigMap{
		"registryServer":   {Value: reg.Addr},
		"registryUsername": {Value: reg.User},
		"registryPassword": {Value: reg.Password, Secret: true},
		"repository":       {Value: "bench/custom-nginx"},
		"hostPort":         {Value: fmt.Sprint(port)},
		"baseImage":        {Value: base},
	})
	if err != nil {
		return err
	}
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
	t.add("pulumi up, first (build, push, run, smoke check)", first.Round(10*time.Millisecond).String(), "warm Go build cache; registry on 127.0.0.1")

	var noop []time.Duration
	for range noops {
		d, err := timed(func() error { _, err := stack.Up(ctx, optup.ExpectNoChanges()); return err })
		if err != nil {
			return fmt.Errorf("no-op pulumi up: %w", err)
		}
		noop = append(noop, d)
	}
	t.add("pulumi up, no-op", stats(noop), fmt.Sprintf("%d runs, --expect-no-changes", noops))

	page := filepath.Join(project, "app", "html", "index.html")
	old, err := os.ReadFile(page)
	if err != nil {
		return err
	}
	changed := strings.Replace(string(old), "</main>", "<p>bench</p>\n</main>", 1)
	if err := os.WriteFile(page, []byte(changed), 0o644); err != nil {
		return err
	}
	probe := startOutageProbe(fmt.Sprintf("http://127.0.0.1:%d/", port))
	change, err := timed(up)
	outage := probe.stop()
	if err != nil {
		return fmt.Errorf("pulumi up after a page change: %w", err)
	}
	t.add("pulumi up, page change (build, push, replace, check)", change.Round(10*time.Millisecond).String(), "")
	t.add("page not served during that change", outage.Round(10*time.Millisecond).String(), "longest gap seen by a 50 ms probe; the port is fixed, so the old container goes first")

	destroy, err := timed(func() error { _, err := stack.Destroy(ctx); return err })
	if err != nil {
		return fmt.Errorf("pulumi destroy: %w", err)
	}
	t.add("pulumi destroy", destroy.Round(10*time.Millisecond).String(), "")
	return nil
}

// outageProbe fetches a URL every 50 ms and keeps the longest stretch of failures.
type outageProbe struct {
	done    chan struct{}
	longest chan time.Duration
}

func startOutageProbe(url string) *outageProbe {
	p := &outageProbe{done: make(chan struct{}), longest: make(chan time.Duration, 1)}
	client := &http.Client{Timeout: time.Second}
	go func() {
		var longest time.Duration
		var downSince time.Time
		limit := time.After(10 * time.Minute) // bounded even if stop is never called
		for {
			select {
			case <-p.done:
				p.longest <- longest
				return
			case <-limit:
				p.longest <- longest
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := client.Get(url)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			switch {
			case !ok && downSince.IsZero():
				downSince = time.Now()
			case ok && !downSince.IsZero():
				longest = max(longest, time.Since(downSince))
				downSince = time.Time{}
			}
		}
	}()
	return p
}

func (p *outageProbe) stop() time.Duration {
	close(p.done)
	return <-p.longest
}
