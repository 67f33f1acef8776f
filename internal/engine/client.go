// Package engine is the Docker engine the stack deploys to: how the program reaches it
// (Docker's official Go client, as the docker provider does), which platforms it runs, and
// the hardened runtime every place that runs the site's image uses.
package engine

import (
	"github.com/docker/cli/cli/connhelper"
	"github.com/docker/docker/client"
)

// Connect reaches the engine at dockerHost as the docker provider does: DOCKER_HOST's
// forms, ssh:// through the ssh client, TLS from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH;
// "" for DOCKER_HOST itself or the local engine.
func Connect(dockerHost string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	helper, err := connhelper.GetConnectionHelper(dockerHost)
	switch {
	case err != nil:
		return nil, err
	case helper != nil:
		opts = append(opts, client.WithHost(helper.Host), client.WithDialContext(helper.Dialer))
	case dockerHost != "":
		opts = append(opts, client.WithHost(dockerHost))
	}
	return client.NewClientWithOpts(opts...)
}
