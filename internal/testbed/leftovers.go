package testbed

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// netnsDir is where `ip netns add` keeps the named network namespaces.
const netnsDir = "/var/run/netns"

// EngineContents is what an engine (and the host's named network namespaces) holds at
// one moment: a description of each thing, by its kind and ID ("image sha256:…").
type EngineContents map[string]string

// Contents lists the engine's images (intermediate ones included), containers, networks
// and volumes, and the host's named network namespaces.
func (e *Engine) Contents(ctx context.Context) (EngineContents, error) {
	c := EngineContents{}
	images, err := e.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	for _, img := range images {
		c["image "+img.ID] = fmt.Sprintf("image %s %v", img.ID, img.RepoTags)
	}
	containers, err := e.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	for _, ctr := range containers {
		c["container "+ctr.ID] = fmt.Sprintf("container %.12s %v of %s", ctr.ID, ctr.Names, ctr.Image)
	}
	networks, err := e.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, n := range networks {
		c["network "+n.ID] = fmt.Sprintf("network %.12s %s", n.ID, n.Name)
	}
	volumes, err := e.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, v := range volumes.Volumes {
		c["volume "+v.Name] = "volume " + v.Name
	}
	namespaces, _ := os.ReadDir(netnsDir) // none is an empty list
	for _, ns := range namespaces {
		c["netns "+ns.Name()] = "network namespace " + ns.Name()
	}
	return c, nil
}

// WaitLeftovers returns what the engine holds that before did not, waiting up to limit for
// it to go: the engine and Swarm remove some things shortly after they were asked to.
func (e *Engine) WaitLeftovers(ctx context.Context, before EngineContents, limit time.Duration) ([]string, error) {
	deadline := time.Now().Add(limit)
	for {
		now, err := e.Contents(ctx)
		if err != nil {
			return nil, err
		}
		var left []string
		for key, thing := range now {
			if _, ok := before[key]; !ok {
				left = append(left, thing)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			slices.Sort(left)
			return left, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}
