package config

import (
	"fmt"

	"github.com/docker/cli/cli/connhelper/ssh"
	"github.com/docker/docker/client"
)

// EngineHost is the host of a remote Docker engine, from its address as DOCKER_HOST gives
// it ("tcp://host:2376", "ssh://user@host"), parsed by Docker's own helpers; "" for an
// engine on this machine (no address, a unix socket or a Windows named pipe).
func EngineHost(dockerHost string) (string, error) {
	if dockerHost == "" {
		return "", nil
	}
	u, err := client.ParseHostURL(dockerHost)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "unix", "npipe":
		return "", nil
	case "tcp", "http", "https":
		if u.Hostname() == "" {
			return "", fmt.Errorf("names no host")
		}
		return u.Hostname(), nil
	case "ssh":
		spec, err := ssh.ParseURL(dockerHost)
		if err != nil {
			return "", err
		}
		return spec.Host, nil
	}
	return "", fmt.Errorf("scheme %q is not one Docker supports here (tcp, ssh, unix, npipe)", u.Scheme)
}
