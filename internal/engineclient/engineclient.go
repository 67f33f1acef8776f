// Package engineclient reaches the Docker engine the docker provider deploys to, with
// Docker's official Go client, for the program's check modes.
package engineclient

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
