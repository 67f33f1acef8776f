package testsupport

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
)

// ConnectEngineAt connects to the engine at host, a DOCKER_HOST value such as
// unix:///tmp/x/docker.sock, whatever DOCKER_HOST says.
func ConnectEngineAt(ctx context.Context, host string) (*Engine, error) {
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker engine at %s: %w", host, err)
	}
	return &Engine{cli}, nil
}
