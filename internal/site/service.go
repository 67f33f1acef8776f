package site

import (
	"encoding/base64"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/subcommand"
)

// rolloutHealthInterval paces a task's healthcheck: Swarm acts on it, counting a task as
// updated once healthy and rolling a bad one back, so it runs far more often than the
// image's.
const rolloutHealthInterval = 2 * time.Second

// updateDelay is the pause between two tasks of a rolling update. Swarm moves to the next
// task once the last one is running or has failed; without a pause it can stop the next
// node's good task before it acts on the failure, and both nodes are down at once.
const updateDelay = 5 * time.Second

// noFailedTask is the failure ratio that fails an update at its first failed task, spelled
// as the provider reads it back ("0" would show a diff on every `up`).
const noFailedTask = "0.0"

// runService registers swarm mode's service, which every node pulls by the pushed digest,
// and the rollout wait, which returns once every task runs the new spec.
func (s *Site) runService(r registration, args Args, pushed []pulumi.Resource) (deployed, error) {
	cfg := args.Config
	auth := &docker.ServiceAuthArgs{
		ServerAddress: pulumi.String(cfg.RegistryServer),
		Username:      pulumi.String(cfg.RegistryUsername),
		Password:      secret(cfg.RegistryPassword),
	}
	// The engine reads a docker.io image back by its familiar name (alice/custom-nginx@…,
	// not docker.io/alice/…): given in that form, a no-op `up` sees no diff.
	image := s.ImageRef.ApplyT(familiarName).(pulumi.StringOutput)
	secrets, err := s.tlsSecrets(r, args)
	if err != nil {
		return deployed{}, err
	}
	s.Service, err = docker.NewService(r.ctx, r.named("service"), serviceArgs(args.NamePrefix, image, cfg, auth, secrets),
		r.parent, pulumi.DependsOn(pushed), pulumi.AdditionalSecretOutputs([]string{"auth"}))
	if err != nil {
		return deployed{}, err
	}
	// A rolling update keeps the service: the checks follow the image it rolled out, and
	// the certificate's files.
	rerun := pulumi.Array{s.Service.ID(), s.ImageRef}
	if files := tlsFiles(cfg); files != nil {
		rerun = append(rerun, pulumi.String(engine.TLSSHA256(files)))
	}
	wait := subcommand.RolloutWait{DockerHost: cfg.DockerHost, Timeout: subcommand.RolloutTimeout}
	s.RolloutWait, err = r.command("rollout", subcommand.RolloutWaitName, pulumi.ToStringArray(wait.Flags()),
		s.Service.Name, rerun, nil, pulumi.DependsOn([]pulumi.Resource{s.Service}))
	if err != nil {
		return deployed{}, err
	}
	return deployed{resource: s.RolloutWait, rerun: rerun}, nil
}

// familiarName is ref as the engine shows it: docker.io's domain and library/ left out.
func familiarName(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	return reference.FamiliarString(named), nil
}

// serviceArgs runs image (the pushed digest, so every node runs exactly that build) as a
// swarm service with the container's hardened runtime, and rolls updates one task at a
// time, rolling back a task that does not come up healthy.
func serviceArgs(name string, image pulumi.StringInput, cfg config.Config, auth *docker.ServiceAuthArgs,
	secrets docker.ServiceTaskSpecContainerSpecSecretArray) *docker.ServiceArgs {
	rt := engine.Hardened
	publish := func(target, published int) docker.ServiceEndpointSpecPortArgs {
		return docker.ServiceEndpointSpecPortArgs{TargetPort: pulumi.Int(target), PublishedPort: pulumi.Int(published),
			PublishMode: pulumi.String(cfg.PublishMode), Protocol: pulumi.String("tcp")}
	}
	ports := docker.ServiceEndpointSpecPortArray{publish(rt.ContainerPort, cfg.HostPort)}
	if cfg.TLS.Enabled() {
		ports = append(ports, publish(engine.HTTPSPort, cfg.HTTPSPort))
	}
	// Two tasks cannot bind one host port on a node: in host mode the old task stops first,
	// and each node runs at most one task.
	order := "start-first"
	var placement *docker.ServiceTaskSpecPlacementArgs
	if cfg.PublishMode == config.PublishHost {
		order = "stop-first"
		placement = &docker.ServiceTaskSpecPlacementArgs{MaxReplicas: pulumi.Int(1)}
	}
	mode := &docker.ServiceModeArgs{Replicated: &docker.ServiceModeReplicatedArgs{Replicas: pulumi.Int(cfg.Replicas)}}
	if cfg.ServiceMode == config.ServiceGlobal {
		mode = &docker.ServiceModeArgs{Global: pulumi.Bool(true)}
		placement = nil // one task per node already
	}
	// A task counts as updated once it is healthy; watch it for longer than a failing
	// healthcheck takes to call it unhealthy, so a bad build is caught and rolled back.
	health := rt.Health.Every(rolloutHealthInterval)
	monitor := (health.Interval*time.Duration(health.Retries+1) + health.Timeout).String()
	return &docker.ServiceArgs{
		Name: pulumi.String(name),
		Auth: auth,
		Mode: mode,
		TaskSpec: &docker.ServiceTaskSpecArgs{
			ContainerSpec: &docker.ServiceTaskSpecContainerSpecArgs{
				Image:    image,
				User:     pulumi.String(rt.User),
				ReadOnly: pulumi.Bool(rt.ReadOnlyRoot),
				// No tmpfsOptions: docker 4.11.2 panics on them (int vs int64, as in
				// kreuzwerker/terraform-provider-docker#563). Docker's default tmpfs mode is 1777,
				// as ours, and its pages count against the memory limit, which bounds its size.
				Mounts: docker.ServiceTaskSpecContainerSpecMountArray{docker.ServiceTaskSpecContainerSpecMountArgs{
					Type:   pulumi.String("tmpfs"),
					Target: pulumi.String(rt.Tmpfs.Path),
				}},
				CapDrops:        pulumi.ToStringArray(rt.CapDrop),
				StopSignal:      pulumi.String(rt.StopSignal),
				StopGracePeriod: pulumi.String(rt.StopTimeout.String()),
				Healthcheck: &docker.ServiceTaskSpecContainerSpecHealthcheckArgs{
					Tests:       pulumi.ToStringArray(health.Test),
					Interval:    pulumi.String(health.Interval.String()),
					Timeout:     pulumi.String(health.Timeout.String()),
					StartPeriod: pulumi.String(health.StartPeriod.String()),
					Retries:     pulumi.Int(health.Retries),
				},
				Secrets: secrets,
			},
			Resources: &docker.ServiceTaskSpecResourcesArgs{
				Limits: &docker.ServiceTaskSpecResourcesLimitsArgs{MemoryBytes: pulumi.Int(rt.MemoryMB << 20)},
			},
			// Window 0s (restarts counted over all time) is Swarm's default; the provider reads it
			// back, so leaving it out would show a diff on every `up`.
			RestartPolicy: &docker.ServiceTaskSpecRestartPolicyArgs{Condition: pulumi.String("any"), Delay: pulumi.String("1s"), Window: pulumi.String("0s")},
			Placement:     placement,
			LogDriver:     &docker.ServiceTaskSpecLogDriverArgs{Name: pulumi.String(rt.LogDriver), Options: pulumi.ToStringMap(rt.LogOpts)},
		},
		EndpointSpec: &docker.ServiceEndpointSpecArgs{Ports: ports},
		UpdateConfig: &docker.ServiceUpdateConfigArgs{
			Parallelism:     pulumi.Int(1),
			Delay:           pulumi.String(updateDelay.String()),
			Order:           pulumi.String(order),
			Monitor:         pulumi.String(monitor),
			FailureAction:   pulumi.String("rollback"),
			MaxFailureRatio: pulumi.String(noFailedTask),
		},
		RollbackConfig: &docker.ServiceRollbackConfigArgs{
			Parallelism:     pulumi.Int(1),
			Delay:           pulumi.String(updateDelay.String()),
			Order:           pulumi.String(order),
			Monitor:         pulumi.String(monitor),
			FailureAction:   pulumi.String("pause"),
			MaxFailureRatio: pulumi.String(noFailedTask),
		},
		// The provider waits for as many tasks as the service wants, the rollout wait then for
		// every task to run the new spec: one bound for both.
		ConvergeConfig: &docker.ServiceConvergeConfigArgs{Delay: pulumi.String("1s"), Timeout: pulumi.String(subcommand.RolloutTimeout.String())},
	}
}

// tlsSecrets registers, with HTTPS, a Swarm secret for each of the certificate's files,
// named after what they hold: a new certificate is new secrets (Swarm's are immutable), and
// the service's rolling update moves the tasks to them. Each task gets them as files in
// engine.TLSDir, on a tmpfs, owned by nginx's user.
func (s *Site) tlsSecrets(r registration, args Args) (docker.ServiceTaskSpecContainerSpecSecretArray, error) {
	files := tlsFiles(args.Config)
	if files == nil {
		return nil, nil
	}
	uid, gid, err := engine.Hardened.IDs()
	if err != nil {
		return nil, err
	}
	name := TLSName(args.NamePrefix, files)
	var refs docker.ServiceTaskSpecContainerSpecSecretArray
	for _, f := range files {
		role := "tls-" + strings.TrimSuffix(f.Name, path.Ext(f.Name))
		secret, err := docker.NewSecret(r.ctx, r.named(role), &docker.SecretArgs{
			Name: pulumi.String(name + "-" + f.Name),
			Data: pulumi.ToSecret(pulumi.String(base64.StdEncoding.EncodeToString([]byte(f.Content)))).(pulumi.StringOutput),
		}, r.parent, pulumi.DeleteBeforeReplace(false)) // the old one stays until no task uses it
		if err != nil {
			return nil, err
		}
		s.TLSSecrets = append(s.TLSSecrets, secret)
		refs = append(refs, docker.ServiceTaskSpecContainerSpecSecretArgs{
			SecretId:   secret.ID(),
			SecretName: secret.Name,
			FileName:   pulumi.String(f.Target()),
			FileUid:    pulumi.String(strconv.Itoa(uid)),
			FileGid:    pulumi.String(strconv.Itoa(gid)),
			FileMode:   pulumi.Int(int(f.Mode)),
		})
	}
	return refs, nil
}
