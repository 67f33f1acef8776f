package main

import (
	"context"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/testbed"
	"github.com/example/custom-nginx/internal/testpki"
)

// httpsThroughput is the project's image serving the page over HTTPS, hardened, with a
// certificate of a CA of the benchmark's own, put in its volume as the preflight puts it.
// wrk keeps its connections alive, as browsers do: each pays one handshake.
func httpsThroughput(ctx context.Context, e *testbed.Engine, img string, conns int, d time.Duration) (load, error) {
	ca, err := testpki.New("custom-nginx bench CA")
	if err != nil {
		return load{}, err
	}
	leaf, err := ca.Sign([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return load{}, err
	}
	cfg, hostCfg := testbed.HardenedContainer(img)
	engine.Hardened.ServeHTTPS(cfg, hostCfg, nat.PortBinding{HostIP: "127.0.0.1"}, "")
	created, err := e.ContainerCreate(ctx, cfg, hostCfg, nil, nil, "")
	if err != nil {
		return load{}, err
	}
	defer e.RemoveContainer(created.ID)
	if err := engine.CopyFiles(ctx, e.Client, created.ID, engine.TLSFiles(leaf.CertPEM, leaf.KeyPEM, "https://127.0.0.1")); err != nil {
		return load{}, err
	}
	if err := e.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return load{}, err
	}
	plain, err := e.PublishedURL(ctx, created.ID, engine.Hardened.ContainerPort)
	if err != nil {
		return load{}, err
	}
	if _, err := testbed.WaitServed(plain+"healthz", 30*time.Second); err != nil {
		return load{}, err
	}
	published, err := e.PublishedURL(ctx, created.ID, engine.HTTPSPort)
	if err != nil {
		return load{}, err
	}
	return runWrk(ctx, strings.Replace(published, "http://", "https://", 1), conns, d)
}
