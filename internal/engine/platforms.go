package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/containerd/platforms"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/example/custom-nginx/internal/config"
)

// PlatformsOf asks the engine, reached as the docker provider reaches it (cfg.DockerHost, else
// DOCKER_HOST), for its platform and, in swarm mode, for every node's: an empty `platform`
// builds for the engine, not for the machine running pulumi.
func PlatformsOf(ctx context.Context, cfg config.Config) (config.EnginePlatforms, error) {
	cli, err := Connect(cfg.DockerHost)
	if err != nil {
		return config.EnginePlatforms{}, err
	}
	defer cli.Close()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return config.EnginePlatforms{}, &UnreachableError{Engine: cli.DaemonHost(), Err: err}
	}
	p := config.EnginePlatforms{Engine: format(v.Os, v.Arch)}
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

// PlatformQuery asks the engine cfg deploys to for its platforms: PlatformsOf, or a test's.
type PlatformQuery func(ctx context.Context, cfg config.Config) (config.EnginePlatforms, error)

// Complete is cfg completed for the engine it deploys to (config.ForEngine), asked through
// ask when cfg's platform is empty. A preview never fails for an engine out of reach: it
// goes on with the provider's default platform, and warn says so.
func Complete(ctx context.Context, cfg config.Config, ask PlatformQuery, preview bool, warn func(string)) (config.Config, error) {
	if cfg.Platform != "" {
		return cfg, nil
	}
	found, err := ask(ctx, cfg)
	var unreachable *UnreachableError
	switch {
	case err == nil:
		return cfg.ForEngine(found)
	case preview && errors.As(err, &unreachable):
		warn(fmt.Sprintf("%v: the preview shows a build for the provider's default platform, `up` builds for the engine's", err))
		if len(cfg.Platforms) > 0 {
			cfg.Platform = cfg.Platforms[0]
		}
		return cfg, nil
	}
	return cfg, err
}
