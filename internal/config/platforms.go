package config

import (
	"fmt"
	"slices"
	"strings"
)

// EnginePlatforms are what the engine the stack deploys to runs.
type EnginePlatforms struct {
	Engine string   // the engine's own (the manager's, in swarm mode): what the preflight and a container run
	Nodes  []string // swarm mode: every node's, each once, sorted
}

// ForEngine is c completed for the engine that runs found: an empty platform is the
// engine's, and in a swarm whose nodes run several platforms an empty platforms lists them
// all. platforms, when set, must list the engine's platform and every node's: the engine
// runs its own image, and each node pulls its own.
func (c Config) ForEngine(found EnginePlatforms) (Config, error) {
	if c.Platform != "" {
		return c, nil
	}
	c.Platform = found.Engine
	if len(c.Platforms) == 0 && len(found.Nodes) > 1 {
		c.Platforms = found.Nodes
	}
	if len(c.Platforms) == 0 {
		return c, nil
	}
	for _, p := range append([]string{found.Engine}, found.Nodes...) {
		if !slices.Contains(c.Platforms, p) {
			return c, fmt.Errorf("config %s: the engine or a swarm node runs %s, which %s does not list; fix: pulumi config set %s %s,%s",
				KeyPlatforms, p, KeyPlatforms, KeyPlatforms, strings.Join(c.Platforms, ","), p)
		}
	}
	return c, nil
}
