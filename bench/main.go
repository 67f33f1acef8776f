// Command bench measures the image and the program: bytes the project adds to the base,
// container start to first page and to healthy, page throughput against the stock base,
// the Go builds behind every `pulumi up`, the program's question to the engine, and the
// `pulumi up` runs themselves: where their time goes, the docker CLI's floor for the same
// job, visitors under load through an up, and the running site's idle cost. It prints a
// Markdown table and writes it to docs/benchmarks.md, the one place figures live. Run it
// with `make bench`.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/example/custom-nginx/internal/testbed"
)

func main() {
	var o options
	flag.IntVar(&o.starts, "starts", 20, "container starts to time")
	flag.IntVar(&o.conns, "connections", 50, "wrk connections")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "wrk duration per image")
	flag.BoolVar(&o.skipCold, "skip-cold-build", false, "skip the cold (empty GOCACHE) go build")
	flag.IntVar(&o.noops, "noops", 5, "no-op `pulumi up` runs to time")
	flag.DurationVar(&o.wrkDuringUp, "wrk-during-up", 30*time.Second, "wrk duration around a no-op up and around a page change; it has to outlast the up")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "how long the machine's idle CPU is measured, with the site running and with it stopped")
	flag.Parse()
	if err := checkedRun(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the bench's flags.
type options struct {
	starts, conns, noops  int
	duration, wrkDuringUp time.Duration
	idle                  time.Duration
	skipCold              bool
}

// checkedRun runs the benchmark on the engine DOCKER_HOST names, then fails if the engine
// holds anything (an image, container, network or namespace) it did not hold before.
func checkedRun(o options) error {
	ctx := context.Background()
	e, err := testbed.ConnectEngine(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	before, err := e.Contents(ctx)
	if err != nil {
		return err
	}
	err = run(ctx, e, o)
	left, leftErr := e.WaitLeftovers(ctx, before, 15*time.Second)
	if len(left) > 0 {
		leftErr = fmt.Errorf("left on the engine, not there before the benchmark:\n  %s", strings.Join(left, "\n  "))
	}
	return errors.Join(err, leftErr)
}

type table struct{ rows [][3]string }

func (t *table) add(what, value, note string) {
	t.rows = append(t.rows, [3]string{what, value, note})
	fmt.Fprintf(os.Stderr, "  %-55s %s\n", what, value)
}

func (t *table) markdown() string {
	var b strings.Builder
	b.WriteString("| measure | value | note |\n|---|---|---|\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
	return b.String()
}

func run(ctx context.Context, e *testbed.Engine, o options) error {
	base, err := testbed.BaseImage("app")
	if err != nil {
		return err
	}
	var t table

	tag := fmt.Sprintf("custom-nginx-bench/app:%d", os.Getpid())
	defer e.RemoveImage(tag)
	if _, err := e.BuildApp(ctx, testbed.AppBuild{Dir: "app", Tag: tag, Base: base}); err != nil {
		return fmt.Errorf("%w (set %s to a local base, e.g. $(make standin))", err, testbed.BaseImageEnv)
	}

	// 1. Size.
	added, total, err := e.AddedBytes(ctx, tag, base)
	if err != nil {
		return err
	}
	t.add("bytes the project's layers add over the base", fmt.Sprintf("%d B (%.1f KiB)", added, float64(added)/1024), "goal ≤ 16 KiB; base "+base)
	t.add("image size", fmt.Sprintf("%.1f MB", float64(total)/1e6), "uncompressed")

	// 2. Start to first 200 and to healthy, hardened settings.
	var served, healthy []time.Duration
	for i := 0; i < o.starts; i++ {
		s, h, err := timeStart(ctx, e, tag)
		if err != nil {
			return err
		}
		served, healthy = append(served, s), append(healthy, h)
	}
	t.add("container start → first HTTP 200 of the page", stats(served), fmt.Sprintf("%d starts, hardened runtime, create+start+serve", o.starts))
	t.add("container start → healthy", stats(healthy), fmt.Sprintf("the image's healthcheck run every %s, as the preflight runs it", testbed.HealthCheckEvery))

	// 3. Throughput: the project's image against the stock base serving the same page.
	if _, err := exec.LookPath("wrk"); err != nil {
		t.add("throughput", "skipped", "no wrk (apt-get install -y wrk)")
	} else {
		stockTag := fmt.Sprintf("custom-nginx-bench/stock:%d", os.Getpid())
		defer e.RemoveImage(stockTag)
		if err := buildStock(ctx, e, base, stockTag); err != nil {
			return err
		}
		ours, err := throughput(ctx, e, tag, true, o.conns, o.duration)
		if err != nil {
			return err
		}
		stock, err := throughput(ctx, e, stockTag, false, o.conns, o.duration)
		if err != nil {
			return err
		}
		httpsLoad, err := httpsThroughput(ctx, e, tag, o.conns, o.duration)
		if err != nil {
			return err
		}
		note := fmt.Sprintf("wrk -c%d -d%s -t2 through the published port, same page, keep-alive", o.conns, o.duration)
		t.add("page requests/s, project image (hardened)", ours.String(), note)
		t.add("page requests/s, stock base config", stock.String(), note)
		t.add("project ÷ stock", fmt.Sprintf("%.2f", ours.rps/stock.rps), "≥ 1 means at least as fast")
		t.add("page requests/s over HTTPS, project image", httpsLoad.String(), note+"; one handshake per connection")
		t.add("HTTPS ÷ HTTP", fmt.Sprintf("%.2f", httpsLoad.rps/ours.rps), "the project image both times, in the same run")
	}

	// 4. Go builds of the Pulumi program.
	if err := goBuilds(&t, o.skipCold); err != nil {
		return err
	}

	// 5. The program's question to the engine, straight and through a TCP relay.
	if err := platformQueries(ctx, &t, e); err != nil {
		return err
	}

	// 6. Pulumi runs, where their time goes, the docker CLI's floor, load and idle cost.
	if _, err := exec.LookPath("pulumi"); err != nil {
		t.add("pulumi up / no-op up / page change / destroy", "skipped", `no Pulumi CLI on PATH (the official installer, or offline: eval "$(bash ../shared/pulumi/install)")`)
	} else if err := pulumiRuns(&t, e, base, o); err != nil {
		return err
	}

	host, _ := os.Hostname()
	report := fmt.Sprintf("# Benchmarks\n\nWritten by `make bench`; every figure of the project is here, and only here. Machine: %s, %d cores, %s/%s, %s; base %s; %s.\n\n%s",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), base, time.Now().UTC().Format(time.RFC3339), t.markdown())
	fmt.Println(report)
	if err := os.WriteFile(reportPath, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "written to", reportPath)
	return nil
}

// reportPath is where the figures live, from the project folder: the README links to it.
const reportPath = "docs/benchmarks.md"

// timeStart starts a hardened container and times the first 200 and healthy from the start call.
func timeStart(ctx context.Context, e *testbed.Engine, img string) (served, healthy time.Duration, err error) {
	cfg, hostCfg := testbed.HardenedContainer(img)
	begin := time.Now()
	id, url, err := e.Start(ctx, cfg, hostCfg)
	if id != "" {
		defer e.RemoveContainer(id)
	}
	if err != nil {
		return 0, 0, err
	}
	if _, err := testbed.WaitServed(url, 30*time.Second); err != nil {
		return 0, 0, err
	}
	served = time.Since(begin)
	if _, err := e.WaitHealthy(ctx, id, 60*time.Second); err != nil {
		return 0, 0, err
	}
	return served, time.Since(begin), nil
}

func stats(ds []time.Duration) string { return statsRounded(ds, time.Millisecond) }

// statsRounded is the median and the maximum of ds, rounded to unit.
func statsRounded(ds []time.Duration, unit time.Duration) string {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return fmt.Sprintf("median %s, max %s", median.Round(unit), sorted[len(sorted)-1].Round(unit))
}

// buildStock builds the base with only the page replaced: the stock config serving our page.
func buildStock(ctx context.Context, e *testbed.Engine, base, tag string) error {
	page, err := os.ReadFile("app/html/index.html")
	if err != nil {
		return err
	}
	dockerfile := "FROM " + base + "\nCOPY index.html /usr/share/nginx/html/index.html\n"
	ctxTar, err := tarOf(map[string][]byte{"Dockerfile": []byte(dockerfile), "index.html": page})
	if err != nil {
		return err
	}
	resp, err := e.ImageBuild(ctx, ctxTar, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

type load struct {
	rps    float64
	errors int
}

func (l load) String() string { return fmt.Sprintf("%.0f (errors %d)", l.rps, l.errors) }

func throughput(ctx context.Context, e *testbed.Engine, img string, hardened bool, conns int, d time.Duration) (load, error) {
	var cfg *container.Config
	var hostCfg *container.HostConfig
	if hardened {
		cfg, hostCfg = testbed.HardenedContainer(img)
	} else {
		port := nat.Port("80/tcp")
		cfg = &container.Config{Image: img, ExposedPorts: nat.PortSet{port: {}}}
		hostCfg = &container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: "0"}}}}
	}
	id, url, err := e.Start(ctx, cfg, hostCfg)
	if id != "" {
		defer e.RemoveContainer(id)
	}
	if err != nil {
		return load{}, err
	}
	if _, err := testbed.WaitServed(url, 30*time.Second); err != nil {
		return load{}, err
	}
	return runWrk(ctx, url, conns, d)
}

// runWrk loads url with conns keep-alive connections for d.
func runWrk(ctx context.Context, url string, conns int, d time.Duration) (load, error) {
	out, err := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", conns), wrkDuration(d), url).CombinedOutput()
	if err != nil {
		return load{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	w, err := parseWrk(out)
	if err != nil {
		return load{}, err
	}
	return load{rps: w.rps, errors: w.errors()}, nil
}

// goBuilds times the builds the Go language host does on `pulumi up`: into a fresh temp
// file (no buildTarget) and into the fixed buildTarget, which Go skips relinking.
func goBuilds(t *table, skipCold bool) error {
	tmp, err := os.MkdirTemp("", "custom-nginx-bench-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	timeBuild := func(out string, env ...string) (time.Duration, error) {
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Env = append(os.Environ(), env...)
		begin := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("go build: %v\n%s", err, b)
		}
		return time.Since(begin), nil
	}
	if !skipCold {
		cold, err := timeBuild(filepath.Join(tmp, "cold"), "GOCACHE="+filepath.Join(tmp, "gocache"))
		if err != nil {
			return err
		}
		t.add("go build, cold (empty GOCACHE)", cold.Round(10*time.Millisecond).String(), "first `pulumi up` on a machine")
	}
	target := filepath.Join(tmp, "target")
	if _, err := timeBuild(target); err != nil { // warm the cache and the target
		return err
	}
	var fresh, noop []time.Duration
	for i := 0; i < 5; i++ {
		d, err := timeBuild(filepath.Join(tmp, fmt.Sprintf("fresh-%d", i)))
		if err != nil {
			return err
		}
		fresh = append(fresh, d)
		d, err = timeBuild(target)
		if err != nil {
			return err
		}
		noop = append(noop, d)
	}
	t.add("go build into a fresh file, warm cache", stats(fresh), "what each `pulumi up` costs without buildTarget")
	t.add("go build into the unchanged buildTarget", stats(noop), "what each `pulumi up` costs with buildTarget: no relink")
	info, err := os.Stat(target)
	if err != nil {
		return err
	}
	t.add("program binary size", fmt.Sprintf("%.1f MB", float64(info.Size())/1e6), "")
	return nil
}

func tarOf(files map[string][]byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}
