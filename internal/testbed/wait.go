package testbed

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// WaitNoContainers waits until the engine has no container matching f (every container
// for an empty f), stopped ones included: Swarm removes a service's containers shortly
// after the service.
func (e *Engine) WaitNoContainers(ctx context.Context, f filters.Args, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		list, err := e.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d containers left after %s", len(list), limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
