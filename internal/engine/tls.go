package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// HTTPSPort is where nginx answers HTTPS in the container, when the site serves it
// (app/https.conf).
const HTTPSPort = 8443

// TLSDir is where nginx finds the certificate, its key and site.conf (app/nginx.conf
// includes *.conf there): a volume mounted at run time, since the key must never enter
// the image.
const TLSDir = "/run/tls"

// File is one file nginx reads from TLSDir, owned by the user nginx runs as.
type File struct {
	Name    string // in TLSDir
	Content string
	Mode    int64
}

// TLSFiles are what nginx reads from TLSDir to serve HTTPS with certificate and key and
// redirect plain HTTP to origin (https://siteHost[:httpsPort]). Only nginx's user reads
// the key.
func TLSFiles(certificate, key, origin string) []File {
	return []File{
		{Name: "cert.pem", Content: certificate, Mode: 0o444},
		{Name: "key.pem", Content: key, Mode: 0o400},
		{Name: "site.conf", Content: SiteConf(origin), Mode: 0o444},
	}
}

// SiteConf is the file that turns HTTPS on: it sets where plain HTTP redirects to and
// includes the image's https.conf.
func SiteConf(origin string) string {
	return fmt.Sprintf("set $https_origin %q;\ninclude /etc/nginx/https.conf;\n", origin)
}

// Target is where nginx reads f.
func (f File) Target() string { return TLSDir + "/" + f.Name }

// TLSSHA256 is a digest of what the files hold, lowercase hex: it changes with the
// certificate, the key or the origin, and says nothing of them.
func TLSSHA256(files []File) string {
	sum := sha256.New()
	for _, f := range files {
		fmt.Fprintf(sum, "%s\x00%d\x00%s", f.Name, len(f.Content), f.Content)
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// HTTPSContainerPort is HTTPSPort as the engine names it.
func HTTPSContainerPort() nat.Port { return nat.Port(fmt.Sprintf("%d/tcp", HTTPSPort)) }

// ServeHTTPS adds to a container made by Container what HTTPS needs: HTTPSPort published
// as publish says, and volume ("": one of the container's own, removed with it) mounted at
// TLSDir, writable for CopyFiles.
func (s Runtime) ServeHTTPS(cfg *container.Config, hostCfg *container.HostConfig, publish nat.PortBinding, volume string) {
	cfg.ExposedPorts[HTTPSContainerPort()] = struct{}{}
	hostCfg.PortBindings[HTTPSContainerPort()] = []nat.PortBinding{publish}
	hostCfg.Mounts = append(hostCfg.Mounts, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: TLSDir})
}

// CopyFiles copies files into TLSDir of the created container id, a volume: a tar archive
// the engine extracts there (into the root, a read-only one refuses it), owned by the
// user nginx runs as.
func CopyFiles(ctx context.Context, cli *client.Client, id string, files []File) error {
	uid, gid, err := Hardened.IDs()
	if err != nil {
		return err
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Content)), Uid: uid, Gid: gid}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(f.Content)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return cli.CopyToContainer(ctx, id, TLSDir, &archive, container.CopyToContainerOptions{})
}

// IDs are the numeric user and group of User ("uid:gid").
func (s Runtime) IDs() (uid, gid int, err error) {
	u, g, _ := strings.Cut(s.User, ":")
	if uid, err = strconv.Atoi(u); err == nil {
		gid, err = strconv.Atoi(g)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("user %q is not uid:gid", s.User)
	}
	return uid, gid, nil
}
