package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/testbed"
)

// The floor is the docker CLI doing a deployment's job by hand, each command timed whole:
// what no program on this machine can beat. Its ratio to the stack's time is what a reader
// compares across machines, where the seconds themselves differ.

// floorRun is one deployment by hand.
type floorRun struct {
	build, push, run, removeOld time.Duration // run: `docker run -d` until the page answers 200
}

func (f floorRun) total() time.Duration { return f.build + f.push + f.run + f.removeOld }

// floorCLI runs the docker CLI against the bench's engine, with a DOCKER_CONFIG of its own
// (never the user's: the login lands there) and the classic builder: the CLI is newer than
// the engine and has no buildx.
type floorCLI struct {
	env []string
}

func (c floorCLI) docker(ctx context.Context, stdin string, args ...string) (time.Duration, string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), c.env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(begin)
	if err != nil {
		return took, string(out), fmt.Errorf("docker %s: %v\n%s", args[0], err, out)
	}
	return took, string(out), nil
}

// floor is both deployments by hand: the first, and the page change.
type floor struct{ first, change floorRun }

// floorJob is what the floor deploys and where: the app's copy it builds, the registry
// repository it pushes to, and what it has to remove afterwards.
type floorJob struct {
	e          *testbed.Engine
	cli        floorCLI
	app        string // a copy of app/, whose page the page change edits
	repo       string // registry/repository, without tag
	base       string
	platform   string // the engine's os/arch: the classic builder sets no BUILDPLATFORM
	tags       []string
	containers []string
}

// timeFloor deploys by hand what the stack deploys, into the same registry: build, push and
// run the app, then build, push and run it with page changed (its full new content) and
// remove the old container. Everything it made goes again, also on error.
func timeFloor(ctx context.Context, e *testbed.Engine, reg *testbed.Registry, base, page string) (f floor, err error) {
	tmp, err := os.MkdirTemp("", "custom-nginx-bench-floor-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(tmp)
	job := &floorJob{e: e, app: filepath.Join(tmp, "app"), repo: reg.Addr + "/bench/floor", base: base}
	defer job.cleanUp()
	if err := os.CopyFS(job.app, os.DirFS("app")); err != nil {
		return f, err
	}
	if err := job.prepare(ctx, tmp, reg); err != nil {
		return f, err
	}
	var old string
	if f.first, old, err = job.deploy(ctx, "1", ""); err != nil {
		return f, fmt.Errorf("floor, first deployment: %w", err)
	}
	if err := os.WriteFile(filepath.Join(job.app, site.PagePath), []byte(page), 0o644); err != nil {
		return f, err
	}
	if f.change, _, err = job.deploy(ctx, "2", old); err != nil {
		return f, fmt.Errorf("floor, page change: %w", err)
	}
	return f, nil
}

// prepare logs in to the registry, untimed: a user's login precedes deployments, as the
// stack's credentials are config set before its first up.
func (j *floorJob) prepare(ctx context.Context, tmp string, reg *testbed.Registry) error {
	server, err := j.e.ServerVersion(ctx)
	if err != nil {
		return err
	}
	j.platform = server.Os + "/" + server.Arch
	config := filepath.Join(tmp, "docker-config")
	if err := os.Mkdir(config, 0o700); err != nil {
		return err
	}
	j.cli = floorCLI{env: []string{"DOCKER_CONFIG=" + config, "DOCKER_HOST=" + j.e.DaemonHost(), "DOCKER_BUILDKIT=0"}}
	_, _, err = j.cli.docker(ctx, reg.Password, "login", "--username", reg.User, "--password-stdin", reg.Addr)
	return err
}

// deploy builds, pushes and runs the app as tag, then removes the container old ("" for
// none), and returns the times and the new container.
func (j *floorJob) deploy(ctx context.Context, tag, old string) (r floorRun, id string, err error) {
	ref := j.repo + ":" + tag
	j.tags = append(j.tags, ref)
	if r.build, err = j.build(ctx, ref); err != nil {
		return r, "", err
	}
	if r.push, _, err = j.cli.docker(ctx, "", "push", ref); err != nil {
		return r, "", err
	}
	if r.run, id, err = j.run(ctx, ref); err != nil {
		return r, id, err
	}
	if old != "" {
		if r.removeOld, _, err = j.cli.docker(ctx, "", "rm", "-f", old); err != nil {
			return r, id, err
		}
	}
	return r, id, nil
}

// build runs `docker build` of the app copy as the stack builds it, with the base and the
// engine's platform as build args, and then removes the images of the config-check stage
// that the classic builder leaves (untimed: a user would not).
func (j *floorJob) build(ctx context.Context, ref string) (time.Duration, error) {
	before, err := j.e.ImageIDs(ctx)
	if err != nil {
		return 0, err
	}
	took, out, err := j.cli.docker(ctx, "", "build", "--tag", ref,
		"--build-arg", site.BaseImageArg+"="+j.base, "--build-arg", site.BuildPlatformArg+"="+j.platform, j.app)
	var keep string
	if inspect, inspectErr := j.e.ImageInspect(ctx, ref); inspectErr == nil {
		keep = inspect.ID
	}
	j.e.RemoveBuildSteps(ctx, out, before, keep)
	return took, err
}

// run starts ref with `docker run -d` and the hardened flags on a free port, and times it
// until the page answers 200. The old container holds the site's port, so each run takes
// another port.
func (j *floorJob) run(ctx context.Context, ref string) (time.Duration, string, error) {
	port, err := testbed.FreePort()
	if err != nil {
		return 0, "", err
	}
	name := fmt.Sprintf("custom-nginx-bench-floor-%d-%d", os.Getpid(), len(j.containers))
	j.containers = append(j.containers, name)
	args := append([]string{"run", "--detach", "--name", name}, hardenedRunFlags(engine.Hardened)...)
	args = append(args, "--publish", fmt.Sprintf("127.0.0.1:%d:%d", port, engine.Hardened.ContainerPort), ref)
	begin := time.Now()
	if _, _, err := j.cli.docker(ctx, "", args...); err != nil {
		return 0, name, err
	}
	if _, err := testbed.WaitServed(fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second); err != nil {
		return 0, name, err
	}
	return time.Since(begin), name, nil
}

// cleanUp removes the floor's containers, then its images by tag: the last tag's removal
// takes the image's registry digest with it, and an image the bench built identically
// before keeps its own tag.
func (j *floorJob) cleanUp() {
	for _, name := range j.containers {
		j.e.RemoveContainer(name)
	}
	for _, ref := range j.tags {
		j.e.RemoveImage(ref)
	}
}

// hardenedRunFlags are `docker run`'s flags for rt, the spec engine.Hardened.Container
// gives the engine API. The healthcheck is left to the image's HEALTHCHECK, which a unit
// test keeps equal to rt.Health (--health-cmd would take a shell command instead).
func hardenedRunFlags(rt engine.Runtime) []string {
	flags := []string{
		"--user", rt.User,
		"--tmpfs", rt.Tmpfs.Path + ":" + rt.Tmpfs.Options(),
		"--memory", fmt.Sprintf("%dm", rt.MemoryMB),
		"--memory-swap", fmt.Sprintf("%dm", rt.MemoryMB),
		"--restart", rt.Restart,
		"--stop-signal", rt.StopSignal,
		"--stop-timeout", strconv.Itoa(int(rt.StopTimeout.Seconds())),
		"--log-driver", rt.LogDriver,
	}
	if rt.ReadOnlyRoot {
		flags = append(flags, "--read-only")
	}
	for _, c := range rt.CapDrop {
		flags = append(flags, "--cap-drop", c)
	}
	for _, o := range rt.SecurityOpts {
		flags = append(flags, "--security-opt", o)
	}
	for _, u := range rt.Ulimits {
		flags = append(flags, "--ulimit", fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	for _, k := range slices.Sorted(maps.Keys(rt.LogOpts)) {
		flags = append(flags, "--log-opt", k+"="+rt.LogOpts[k])
	}
	return flags
}

// addRows reports the floor's commands and the ratio of the stack's time to it.
func (f floor) addRows(t *table, firstUp, pageChange time.Duration) {
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	const how = "docker CLI, DOCKER_BUILDKIT=0, the engine's layer cache as the bench left it"
	t.add("floor, first deployment: docker build", secs(f.first.build), how)
	t.add("floor, first deployment: docker push", secs(f.first.push), "same local registry, logged in beforehand (untimed)")
	t.add("floor, first deployment: docker run -d → first 200", secs(f.first.run), "hardened flags (engine.Hardened), one container, no port holder")
	t.add("floor, first deployment: total", secs(f.first.total()), "")
	t.add("floor, page change: docker build", secs(f.change.build), "the same page change as the stack's")
	t.add("floor, page change: docker push", secs(f.change.push), "")
	t.add("floor, page change: docker run -d → first 200", secs(f.change.run), "the new container on another free host port: the old one holds its port")
	t.add("floor, page change: docker rm -f of the old one", secs(f.change.removeOld), "")
	t.add("floor, page change: total", secs(f.change.total()), "")
	t.add("first up ÷ floor", fmt.Sprintf("%.1f", firstUp.Seconds()/f.first.total().Seconds()), "compare this across machines, not the seconds")
	t.add("page change ÷ floor", fmt.Sprintf("%.1f", pageChange.Seconds()/f.change.total().Seconds()), "compare this across machines, not the seconds")
}
