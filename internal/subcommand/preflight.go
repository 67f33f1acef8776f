package subcommand

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
)

// PreflightName is the program's first argument that selects the preflight.
const PreflightName = "preflight"

// PreflightLabel marks every throwaway container, so that one left behind can be found.
const PreflightLabel = "custom-nginx.preflight"

// PreflightTimeout bounds the whole check: a container starts and serves in well under a
// second, and is healthy after its first healthcheck.
const PreflightTimeout = 30 * time.Second

// preflightHealthInterval is how soon after its start the throwaway container runs the
// image's healthcheck command, and then again.
const preflightHealthInterval = 100 * time.Millisecond

// Preflight proves a new build before the running site is touched: after the build and
// before the push it starts a throwaway container from Image on the engine at DockerHost,
// with the site's hardened runtime, and checks that it serves the custom page byte for byte,
// answers /healthz and becomes healthy. It always removes the throwaway container.
type Preflight struct {
	DockerHost string // as DOCKER_HOST gives it; "" for DOCKER_HOST itself or the local engine
	Image      string // the build's image ID
	SHA256     string // of the custom page, lowercase hex
	HostIP     string // the address the throwaway container publishes on: the site's hostIp
	SiteHost   string // where it is fetched, as the site's url is
	Timeout    time.Duration
	// Owner, the stack's running name, is the throwaway container's PreflightLabel value. One its
	// owner left (a preflight killed with SIGKILL, as the command provider kills it when the
	// CLI dies) is removed first: the stack's lock lets one preflight run at a time.
	Owner string
	// With HTTPS: the certificate chain nginx serves, its key (from TLSKeyEnv, never a flag),
	// the origin plain HTTP redirects to, and the CAs trusted beside the system's roots.
	TLSCertificate string
	TLSKey         config.Secret
	HTTPSOrigin    string
	TrustedCA      string
	// TLSVolume, with HTTPS, is the volume the preflight puts the certificate's files in,
	// and the site's nginx then mounts: what is proven is what it serves. "" is a volume of
	// the throwaway container's own (swarm mode, where tasks get the files as secrets).
	TLSVolume string
}

// TLSKeyEnv carries the certificate's key into the preflight: the command resource's
// environment, a secret, is encrypted in the state and never on a command line.
const TLSKeyEnv = "CUSTOM_NGINX_TLS_KEY"

// https reports whether the throwaway container serves HTTPS.
func (c Preflight) https() bool { return c.TLSCertificate != "" }

// Validate says what is wrong with c.
func (c Preflight) Validate() error {
	var problems []error
	if c.Image == "" {
		problems = append(problems, errors.New("image is required"))
	}
	if err := (SmokeCheck{URL: "http://" + net.JoinHostPort(c.SiteHost, "1") + "/", SHA256: c.SHA256, Attempts: 1,
		Interval: time.Second, RequestTimeout: time.Second}).Validate(); err != nil {
		problems = append(problems, err)
	}
	if net.ParseIP(c.HostIP) == nil {
		problems = append(problems, fmt.Errorf("host-ip %q is not an IP address", c.HostIP))
	}
	if c.Timeout <= 0 {
		problems = append(problems, fmt.Errorf("timeout %v is not positive", c.Timeout))
	}
	if c.https() && (c.TLSKey == "" || c.HTTPSOrigin == "") {
		problems = append(problems, fmt.Errorf("tls-certificate needs https-origin and the key in $%s", TLSKeyEnv))
	}
	return errors.Join(problems...)
}

// Args is the command line after PreflightName that makes Main run c: Flags, then the image.
func (c Preflight) Args() []string { return append(c.Flags(), c.Image) }

// Flags are Args without the image (the command provider appends it as create).
func (c Preflight) Flags() []string {
	flags := []string{"-docker-host=" + c.DockerHost, "-sha256=" + c.SHA256, "-host-ip=" + c.HostIP,
		"-site-host=" + c.SiteHost, "-timeout=" + c.Timeout.String(), "-owner=" + c.Owner}
	if c.https() { // left out for a plain site, whose command stays as it was
		flags = append(flags, "-tls-certificate="+c.TLSCertificate, "-https-origin="+c.HTTPSOrigin, "-trusted-ca="+c.TrustedCA,
			"-tls-volume="+c.TLSVolume)
	}
	return flags
}

// preflightMode is the preflight's command line: flags, then the image.
var preflightMode = Mode[Preflight]{
	Name:     PreflightName,
	Synopsis: "-sha256 HEX [flags] IMAGE",
	About:    "proves IMAGE in a throwaway container before the site runs it",
	Arg:      "the image",
	Flags: func() (*flag.FlagSet, *Preflight, func(string)) {
		c := &Preflight{}
		fs := flag.NewFlagSet(PreflightName, flag.ContinueOnError)
		fs.StringVar(&c.DockerHost, "docker-host", "", "the engine, as DOCKER_HOST gives it (empty: DOCKER_HOST)")
		fs.StringVar(&c.SHA256, "sha256", "", "lowercase `hex` SHA-256 of the custom page")
		fs.StringVar(&c.HostIP, "host-ip", "0.0.0.0", "the address the throwaway container publishes on")
		fs.StringVar(&c.SiteHost, "site-host", "localhost", "the host the page is fetched from")
		fs.DurationVar(&c.Timeout, "timeout", PreflightTimeout, "bound of the whole check")
		fs.StringVar(&c.Owner, "owner", "", "the stack's running name: its throwaway containers left by a killed run are removed first")
		fs.StringVar(&c.TLSCertificate, "tls-certificate", "", "`PEM` chain to serve HTTPS with (its key in $"+TLSKeyEnv+"); empty: plain HTTP")
		fs.StringVar(&c.HTTPSOrigin, "https-origin", "", "where plain HTTP redirects to: https://host[:port]")
		fs.StringVar(&c.TrustedCA, "trusted-ca", "", "`PEM` of CAs trusted beside the system's roots")
		fs.StringVar(&c.TLSVolume, "tls-volume", "", "the volume to put the certificate's files in, which the site's nginx mounts (empty: the throwaway container's own)")
		c.TLSKey = config.Secret(os.Getenv(TLSKeyEnv))
		return fs, c, func(image string) { c.Image = image }
	},
}

// Parse reads a command line made by Args into a valid Preflight.
func ParsePreflight(args []string) (Preflight, error) { return preflightMode.Parse(args) }

// Run starts the throwaway container, proves it and removes it, also when the check fails
// or the command provider interrupts it.
func (c Preflight) Run(ctx context.Context) (msg string, err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	cli, err := engine.Connect(c.DockerHost)
	if err != nil {
		return "", c.failed(err)
	}
	defer cli.Close()
	if err := c.removeLeftovers(ctx, cli); err != nil {
		return "", c.failed(err)
	}
	id, err := c.startThrowaway(ctx, cli)
	if id != "" {
		defer func() {
			if rmErr := remove(cli, id); rmErr != nil && err == nil {
				msg, err = "", c.failed(fmt.Errorf("removing the throwaway container %.12s: %w", id, rmErr))
			}
		}()
	}
	if err != nil {
		return "", c.failed(err)
	}
	if err := c.prove(ctx, cli, id); err != nil {
		return "", c.failed(fmt.Errorf("%w%s", err, logTail(cli, id)))
	}
	return fmt.Sprintf("preflight: %.19s serves the custom page and /healthz and is healthy, in a throwaway container (removed) after %s",
		c.Image, time.Since(start).Round(time.Millisecond)), nil
}

// failed says what went wrong, and that nothing the site runs was touched.
func (c Preflight) failed(err error) error {
	return fmt.Errorf("preflight of the new build %.19s failed, so the running site was left alone: %w", c.Image, err)
}

// startThrowaway creates and starts the throwaway container; on error its ID is still
// returned once it was created, so that it is removed.
func (c Preflight) startThrowaway(ctx context.Context, cli *client.Client) (string, error) {
	cfg, hostCfg := engine.Hardened.Container(c.Image, nat.PortBinding{HostIP: c.HostIP})
	cfg.Labels = map[string]string{PreflightLabel: c.Owner}
	// The image's own healthcheck command, run soon after the start: at the image's interval
	// the check would wait that long for the first run.
	cfg.Healthcheck.Interval = preflightHealthInterval
	// A crash must show as an exit with its log, not as a restart loop.
	hostCfg.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	if c.https() {
		engine.Hardened.ServeHTTPS(cfg, hostCfg, nat.PortBinding{HostIP: c.HostIP}, c.TLSVolume)
	}
	created, err := cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, "")
	if err != nil {
		return "", fmt.Errorf("creating the throwaway container: %w", err)
	}
	if c.https() {
		files := engine.TLSFiles(c.TLSCertificate, string(c.TLSKey), c.HTTPSOrigin)
		if err := engine.CopyFiles(ctx, cli, created.ID, files); err != nil {
			return created.ID, fmt.Errorf("copying the certificate into the volume %s: %w", c.TLSVolume, err)
		}
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return created.ID, fmt.Errorf("starting the throwaway container: %w", err)
	}
	return created.ID, nil
}

// prove checks the page (over HTTPS, with the certificate, when the site serves it),
// /healthz, the redirect of plain HTTP with HTTPS, and the health status, in that order.
func (c Preflight) prove(ctx context.Context, cli *client.Client, id string) error {
	inspect, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	plain, err := c.publishedURL(inspect, engine.Hardened.Port(), "http")
	if err != nil {
		return err
	}
	site := plain
	if c.https() {
		if site, err = c.publishedURL(inspect, engine.HTTPSContainerPort(), "https"); err != nil {
			return err
		}
	}
	page := SmokeCheck{URL: site.String(), SHA256: c.SHA256, Attempts: 250, Interval: 20 * time.Millisecond,
		RequestTimeout: 2 * time.Second, TrustedCA: c.TrustedCA}
	if _, err := page.Run(ctx); err != nil {
		return err
	}
	if err := answers(ctx, plain.JoinPath("healthz").String(), http.StatusOK, ""); err != nil {
		return err
	}
	if c.https() {
		if err := answers(ctx, plain.String(), http.StatusMovedPermanently, c.HTTPSOrigin+"/"); err != nil {
			return err
		}
	}
	return waitHealthy(ctx, cli, id)
}

// publishedURL is where the throwaway container's port answers, on SiteHost.
func (c Preflight) publishedURL(inspect container.InspectResponse, port nat.Port, scheme string) (*url.URL, error) {
	bindings := inspect.NetworkSettings.Ports[port]
	if len(bindings) == 0 || bindings[0].HostPort == "" {
		return nil, fmt.Errorf("the throwaway container publishes no port for %s (state %s)", port, inspect.State.Status)
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(c.SiteHost, bindings[0].HostPort), Path: "/"}, nil
}

// answers checks that target answers status, and, for a redirect, to location.
func answers(ctx context.Context, target string, status int, location string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status || resp.Header.Get("Location") != location {
		return fmt.Errorf("%s answered HTTP %s to %q, want %d to %q", target, resp.Status, resp.Header.Get("Location"), status, location)
	}
	return nil
}

// waitHealthy waits until the engine calls the container healthy.
func waitHealthy(ctx context.Context, cli *client.Client, id string) error {
	for {
		inspect, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		switch h := inspect.State.Health; {
		case !inspect.State.Running:
			return fmt.Errorf("the throwaway container stopped (%s, exit code %d)", inspect.State.Status, inspect.State.ExitCode)
		case h != nil && h.Status == container.Healthy:
			return nil
		case h != nil && h.Status == container.Unhealthy:
			return fmt.Errorf("the throwaway container became unhealthy: %s", lastProbe(h))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the throwaway container is not healthy yet: %w", ctx.Err())
		case <-time.After(preflightHealthInterval / 4):
		}
	}
}

func lastProbe(h *container.Health) string {
	if len(h.Log) == 0 {
		return "no healthcheck ran"
	}
	last := h.Log[len(h.Log)-1]
	return fmt.Sprintf("exit %d: %s", last.ExitCode, strings.TrimSpace(last.Output))
}

// logTail is the end of the throwaway container's error log (nginx's stderr; the access
// log is its stdout), where nginx says what is wrong.
func logTail(cli *client.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	logs, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStderr: true, Tail: "5"})
	if err != nil {
		return ""
	}
	defer logs.Close()
	var out strings.Builder
	if _, err := stdcopy.StdCopy(&out, &out, logs); err != nil || out.Len() == 0 {
		return ""
	}
	return "\nnginx's error log in the throwaway container ends:\n" + strings.TrimRight(out.String(), "\n")
}

// removeLeftovers removes the throwaway containers of c's owner that an earlier, killed
// preflight left.
func (c Preflight) removeLeftovers(ctx context.Context, cli *client.Client) error {
	if c.Owner == "" {
		return nil
	}
	left, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", PreflightLabel+"="+c.Owner))})
	if err != nil {
		return err
	}
	for _, l := range left {
		if err := remove(cli, l.ID); err != nil {
			return fmt.Errorf("removing the throwaway container %.12s an earlier preflight left: %w", l.ID, err)
		}
	}
	return nil
}

// remove force-removes the throwaway container, with a context of its own: the check's
// may be over.
func remove(cli *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
}
