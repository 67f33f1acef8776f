package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Hardened is how the site's nginx runs: one spec for the stack's container, its swarm
// service, the preflight's throwaway container and the tests that start the image, so that
// none can drift from the others. app/Dockerfile repeats Health in its HEALTHCHECK (an image
// needs its own); a unit test keeps them equal.
var Hardened = Runtime{
	User:          "101:101", // the nginx user of the official image
	ContainerPort: containerPort,
	ReadOnlyRoot:  true,
	// nginx writes only its pid file and temp files, all under /tmp (see app/nginx.conf).
	Tmpfs:        Tmpfs{Path: "/tmp", SizeMB: 16, Mode: 0o1777, Flags: []string{"rw", "noexec", "nosuid", "nodev"}},
	CapDrop:      []string{"ALL"},
	SecurityOpts: []string{"no-new-privileges:true"},
	MemoryMB:     128,
	// RLIMIT_NPROC is the process limit the docker provider offers (it has no pidsLimit);
	// it counts the user's processes, so it leaves room for one worker per core.
	Ulimits: []Ulimit{
		{Name: "nproc", Soft: 256, Hard: 256},
		{Name: "nofile", Soft: 4096, Hard: 4096},
	},
	Restart:     "unless-stopped",
	StopSignal:  "SIGQUIT", // graceful: nginx finishes in-flight requests
	StopTimeout: 10 * time.Second,
	LogDriver:   "json-file",
	LogOpts:     map[string]string{"max-size": "10m", "max-file": "3"},
	// The image's healthcheck, and container mode's. Nothing acts on it there: the smoke
	// check is the deployment's readiness gate and the restart policy handles a crash. So it
	// runs rarely, and an idle site costs next to nothing. Where a healthcheck is acted on
	// (swarm's rolling updates, the preflight), it runs faster: see Every.
	Health: HealthSpec{
		Test:        []string{"CMD", "wget", "-q", "-O", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d/healthz", containerPort)},
		Interval:    30 * time.Second,
		Timeout:     2 * time.Second,
		StartPeriod: 10 * time.Second,
		Retries:     2,
	},
}

// containerPort is where nginx listens in the container (app/nginx.conf).
const containerPort = 8080

// Runtime is how the container runs.
type Runtime struct {
	User          string
	ContainerPort int
	ReadOnlyRoot  bool
	Tmpfs         Tmpfs
	CapDrop       []string
	SecurityOpts  []string
	MemoryMB      int // also the memory+swap limit: no swap
	Ulimits       []Ulimit
	Restart       string
	StopSignal    string
	StopTimeout   time.Duration
	LogDriver     string
	LogOpts       map[string]string
	Health        HealthSpec
}

// Tmpfs is the one writable mount.
type Tmpfs struct {
	Path   string
	SizeMB int
	Mode   int
	Flags  []string // mount options beyond size and mode
}

// Options are the mount options as a container's tmpfs takes them.
func (t Tmpfs) Options() string {
	return strings.Join(append(slices.Clone(t.Flags), fmt.Sprintf("size=%dm", t.SizeMB), fmt.Sprintf("mode=%o", t.Mode)), ",")
}

// Ulimit is one resource limit of the container's processes.
type Ulimit struct {
	Name       string
	Soft, Hard int
}

// Every is h run every interval, for where its result is acted on.
func (h HealthSpec) Every(interval time.Duration) HealthSpec {
	h.Interval = interval
	return h
}

// HealthSpec is the container's healthcheck.
type HealthSpec struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}
