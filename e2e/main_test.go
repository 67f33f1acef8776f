// Package e2e tests the project's artefacts against real software: the nginx config
// against the host's nginx, the image against a Docker engine and a registry, the page in
// a browser, and the whole stack through the Pulumi Automation API, on one engine and on a
// two-node swarm. This file holds what the tests share.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/example/custom-nginx/internal/testbed"
)

// appDir is the project's build context, as the stack builds it.
const appDir = "../app"

// project is the Pulumi project's name (Pulumi.yaml): it names the stacks' state files,
// config keys and, with the stack, the container or service.
const project = "custom-nginx"

// runningName is what the stack names its container or service.
func runningName(stack string) string { return project + "-" + stack }

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ownApp builds a distinct image of app/ (no cache, so no other tag shares it) and removes
// the tag when the test ends: for a test that deletes the image.
func ownApp(t *testing.T, e *testbed.Engine) (tag, id, base string) {
	t.Helper()
	tag = "custom-nginx-e2e/app:" + randomHex(t, 6)
	t.Cleanup(func() { e.RemoveImage(tag) })
	id, base, err := buildApp(e, tag, true)
	if err != nil {
		t.Fatal(err)
	}
	return tag, id, base
}

func buildApp(e *testbed.Engine, tag string, noCache bool) (id, base string, err error) {
	base, err = testbed.BaseImage(appDir)
	if err != nil {
		return "", "", err
	}
	id, err = e.BuildApp(context.Background(), testbed.AppBuild{Dir: appDir, Tag: tag, Base: base, NoCache: noCache})
	if err != nil {
		return "", "", fmt.Errorf("%w\n(set %s to a base image present on this machine, e.g. the stand-in from scripts/standin-base.sh)", err, testbed.BaseImageEnv)
	}
	return id, base, nil
}

// confWith is the nginx.conf of the app folder appFolder, and the same with from replaced
// by to, once; the test fails if from is not in it.
func confWith(t *testing.T, appFolder, from, to string) (good, changed []byte) {
	t.Helper()
	good, err := os.ReadFile(filepath.Join(appFolder, "nginx.conf"))
	if err != nil || !bytes.Contains(good, []byte(from)) {
		t.Fatalf("%s/nginx.conf has no %q (%v)", appFolder, from, err)
	}
	return good, bytes.Replace(good, []byte(from), []byte(to), 1)
}

// editConf replaces from with to in appFolder's nginx.conf and returns what puts the
// original back.
func editConf(t *testing.T, appFolder, from, to string) (restore func()) {
	t.Helper()
	conf := filepath.Join(appFolder, "nginx.conf")
	good, changed := confWith(t, appFolder, from, to)
	if err := os.WriteFile(conf, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(conf, good, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shared is one build of app/ for the tests that only read it; TestMain removes it.
var shared struct {
	once          sync.Once
	tag, id, base string
	err           error
}

func sharedApp(t *testing.T, e *testbed.Engine) (tag, id, base string) {
	t.Helper()
	shared.once.Do(func() {
		shared.tag = "custom-nginx-e2e/app:shared-" + randomHex(t, 6)
		shared.id, shared.base, shared.err = buildApp(e, shared.tag, false)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.tag, shared.id, shared.base
}

// TestMain fails the run if the tests leave anything on the engine that was not there
// before: an image (the builds of `pulumi up` included), a container, a network, a volume
// or a network namespace. Without an engine there is nothing to check; the tests that need one
// skip or fail on their own.
func TestMain(m *testing.M) {
	leaveRoomForLanes()
	ctx := context.Background()
	e, err := testbed.ConnectEngine(ctx)
	var before testbed.EngineContents
	if err == nil {
		defer e.Close()
		if before, err = e.Contents(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: not checking for leftovers, the engine's contents are unreadable: %v\n", err)
		}
	}
	code := m.Run()
	if shared.tag != "" && e != nil {
		e.RemoveImage(shared.tag)
	}
	if before != nil {
		code = max(code, reportLeftovers(ctx, e, before))
	}
	os.Exit(code)
}

// reportLeftovers names, on stderr, each thing on the engine that was not there before the
// tests, and returns the exit code that says whether there was any.
func reportLeftovers(ctx context.Context, e *testbed.Engine, before testbed.EngineContents) int {
	left, err := e.WaitLeftovers(ctx, before, 15*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot check for leftovers: %v\n", err)
		return 1
	}
	for _, thing := range left {
		fmt.Fprintf(os.Stderr, "e2e: left behind by the tests: %s\n", thing)
	}
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left %d things on the engine that were not there before\n", len(left))
		return 1
	}
	return 0
}
