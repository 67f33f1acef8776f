package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/testbed"
)

// platformQueryRuns is how many times each way of reaching the engine is asked.
const platformQueryRuns = 20

// platformQueries times the question every `pulumi up` and preview asks the engine first
// (engine.PlatformsOf: a new client, version negotiation, the version) through a TCP relay
// to the engine's unix socket, as DOCKER_HOST=tcp://… reaches a remote engine, and straight
// to the socket as the reference.
func platformQueries(ctx context.Context, t *table, e *testbed.Engine) error {
	socket, ok := strings.CutPrefix(e.DaemonHost(), "unix://")
	if !ok {
		t.add("engine platform query", "skipped", "the bench's engine is at "+e.DaemonHost()+", not a unix socket to relay to")
		return nil
	}
	relay, err := testbed.Forward("127.0.0.1:0", "unix", socket)
	if err != nil {
		return err
	}
	defer relay.Close()
	relayed, err := timePlatformsOf(ctx, "tcp://"+relay.Addr)
	if err != nil {
		return err
	}
	straight, err := timePlatformsOf(ctx, "unix://"+socket)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("engine.PlatformsOf, %d calls", platformQueryRuns)
	t.add("engine platform query, DOCKER_HOST=tcp:// relayed to the socket", statsRounded(relayed, 10*time.Microsecond), note+"; a relay in this process (testbed.Forward)")
	t.add("engine platform query, unix socket", statsRounded(straight, 10*time.Microsecond), note+"; the reference")
	return nil
}

// timePlatformsOf times engine.PlatformsOf against dockerHost, after one untimed call that
// warms what a first call alone pays.
func timePlatformsOf(ctx context.Context, dockerHost string) ([]time.Duration, error) {
	cfg := config.Config{DockerHost: dockerHost}
	if _, err := engine.PlatformsOf(ctx, cfg); err != nil {
		return nil, err
	}
	times := make([]time.Duration, 0, platformQueryRuns)
	for range platformQueryRuns {
		begin := time.Now()
		if _, err := engine.PlatformsOf(ctx, cfg); err != nil {
			return nil, err
		}
		times = append(times, time.Since(begin))
	}
	return times, nil
}
