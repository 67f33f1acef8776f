// Package engineplatform asks the engine the stack deploys to which platform it runs, so
// that an empty `platform` builds for the engine and not for the machine running pulumi.
package engineplatform

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engineclient"
)

// Of is the platform to build for when config leaves `platform` empty: the engine's own in
// container mode; in swarm mode, the one every node runs. The engine is reached as the
// docker provider reaches it (cfg.DockerHost, else DOCKER_HOST).
func Of(ctx context.Context, cfg config.Config) (string, error) {
	cli, err := engineclient.Connect(cfg.DockerHost)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	if cfg.Mode == config.ModeSwarm {
		return ofNodes(ctx, cli)
	}
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return "", &UnreachableError{Engine: cli.DaemonHost(), Err: err}
	}
	return format(v.Os, v.Arch), nil
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

// ofNodes is the one platform of the swarm's nodes; nodes of several platforms cannot all
// run one build.
func ofNodes(ctx context.Context, cli *client.Client) (string, error) {
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return "", &UnreachableError{Engine: cli.DaemonHost(), Err: err}
	}
	byPlatform := map[string][]string{}
	for _, n := range nodes {
		p := format(n.Description.Platform.OS, n.Description.Platform.Architecture)
		byPlatform[p] = append(byPlatform[p], n.Description.Hostname)
	}
	found := make([]string, 0, len(byPlatform))
	for p := range byPlatform {
		found = append(found, p)
	}
	slices.Sort(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("the swarm manager %s lists no node", cli.DaemonHost())
	case 1:
		return found[0], nil
	}
	var runs []string
	for _, p := range found {
		runs = append(runs, p+" ("+strings.Join(byPlatform[p], ", ")+")")
	}
	return "", fmt.Errorf("config %s: the swarm's nodes run %s, and one build runs on one platform; "+
		"fix: pulumi config set %s %s (tasks on nodes of another platform then fail with exec format error)",
		config.KeyPlatform, strings.Join(runs, " and "), config.KeyPlatform, found[0])
}

// format is os/arch as the config spells a platform: the engine says x86_64 or aarch64 for
// a node, amd64 or arm64 for itself.
func format(os, arch string) string {
	return platforms.Format(platforms.Normalize(platforms.Platform{OS: os, Architecture: arch}))
}
