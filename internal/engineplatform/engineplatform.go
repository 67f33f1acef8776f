// Package engineplatform asks the engine the stack deploys to which platforms it runs, so
// that an empty `platform` builds for the engine, and in swarm mode for every node, not for
// the machine running pulumi.
package engineplatform

import (
	"context"
	"fmt"
	"slices"

	"github.com/containerd/platforms"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineclient"
)

// Platforms are what the engine the stack deploys to runs.
type Platforms struct {
	Engine string   // the engine's own (the manager's, in swarm mode): what the preflight and a container run
	Nodes  []string // swarm mode: every node's, each once, sorted
}

// Of asks the engine, reached as the docker provider reaches it (cfg.DockerHost, else
// DOCKER_HOST), for its platform and, in swarm mode, for every node's.
func Of(ctx context.Context, cfg config.Config) (Platforms, error) {
	cli, err := engineclient.Connect(cfg.DockerHost)
	if err != nil {
		return Platforms{}, err
	}
	defer cli.Close()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return Platforms{}, &UnreachableError{Engine: cli.DaemonHost(), Err: err}
	}
	p := Platforms{Engine: format(v.Os, v.Arch)}
	if cfg.Mode == config.ModeSwarm {
		p.Nodes, err = ofNodes(ctx, cli)
	}
	return p, err
}

// UnreachableError is an engine that did not answer: a preview goes on without it.
type UnreachableError struct {
	Engine string // the address asked
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("asking the engine %s for its platform: %v", e.Engine, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ofNodes is every platform the swarm's nodes run, each once, sorted.
func ofNodes(ctx context.Context, cli *client.Client) ([]string, error) {
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the swarm manager %s for its nodes' platforms: %w", cli.DaemonHost(), err)
	}
	var found []string
	for _, n := range nodes {
		if p := format(n.Description.Platform.OS, n.Description.Platform.Architecture); !slices.Contains(found, p) {
			found = append(found, p)
		}
	}
	slices.Sort(found)
	return found, nil
}

// format is os/arch as the config spells a platform: the engine says x86_64 or aarch64 for
// a node, amd64 or arm64 for itself.
func format(os, arch string) string {
	return platforms.Format(platforms.Normalize(platforms.Platform{OS: os, Architecture: arch}))
}
