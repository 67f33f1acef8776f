package subcommand

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/example/custom-nginx/internal/engine"
)

// RolloutWaitName is the program's first argument that selects the rollout wait.
const RolloutWaitName = "rollout-wait"

// pollInterval is how often the manager is asked; a task takes seconds to change state.
const pollInterval = 500 * time.Millisecond

// RolloutState is what a service shows at one moment: its spec's image, container spec and
// task count, the update's state (empty when it was never updated) and message, and its tasks.
type RolloutState struct {
	Image         string
	Spec          string // the container spec, as JSON: a new certificate changes it, not the image
	Replicas      int    // 0 for a global service
	UpdateState   swarm.UpdateState
	UpdateMessage string
	Tasks         []Task
}

// Task is one task of the service: the state Swarm wants and the one it has.
type Task struct {
	Node, Image   string
	Spec          string // its container spec, as RolloutState.Spec
	Desired, Have swarm.TaskState
}

// taskOrder ranks task states as Swarm moves them forward, so "before running" and
// "past running" can be told apart.
var taskOrder = map[swarm.TaskState]int{
	swarm.TaskStateNew: 1, swarm.TaskStateAllocated: 2, swarm.TaskStatePending: 3,
	swarm.TaskStateAssigned: 4, swarm.TaskStateAccepted: 5, swarm.TaskStatePreparing: 6,
	swarm.TaskStateReady: 7, swarm.TaskStateStarting: 8, swarm.TaskStateRunning: 9,
	swarm.TaskStateComplete: 10, swarm.TaskStateShutdown: 11, swarm.TaskStateFailed: 12,
	swarm.TaskStateRejected: 13, swarm.TaskStateRemove: 14, swarm.TaskStateOrphaned: 15,
}

func upToRunning(s swarm.TaskState) bool { return taskOrder[s] <= taskOrder[swarm.TaskStateRunning] }

// onNode is a task that a node has taken on (it may have a container), as opposed to one
// still waiting to be placed, which Swarm may leave pending for good once unwanted.
func (t Task) onNode() bool {
	return t.Node != "" && taskOrder[t.Have] >= taskOrder[swarm.TaskStateAssigned]
}

func (t Task) where() string {
	if t.Node == "" {
		return "not yet placed on a node"
	}
	return "on node " + t.Node
}

// Done says whether the rollout is over: every wanted task runs the spec (true, nil), or
// Swarm gave up on it (true, the reason). Otherwise it says what it waits for.
func (s RolloutState) Done() (bool, string, error) {
	switch s.UpdateState {
	case swarm.UpdateStateRollbackStarted:
		return false, "Swarm is rolling the update back: " + s.UpdateMessage, nil
	case swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
		return true, "", fmt.Errorf("Swarm rolled the update back (%s): %s", s.UpdateState, s.UpdateMessage)
	case swarm.UpdateStatePaused:
		return true, "", fmt.Errorf("Swarm paused the update: %s", s.UpdateMessage)
	}
	running := 0
	for _, t := range s.Tasks {
		switch {
		case !upToRunning(t.Desired) && upToRunning(t.Have) && t.onNode():
			return false, fmt.Sprintf("a task %s is stopping", t.where()), nil
		case !upToRunning(t.Desired):
			continue // a task of the past, or one that was never placed and is no longer wanted
		case t.Image != s.Image:
			return false, fmt.Sprintf("a task %s still runs %s", t.where(), t.Image), nil
		case t.Spec != s.Spec:
			return false, fmt.Sprintf("a task %s still runs the previous spec", t.where()), nil
		case t.Have != swarm.TaskStateRunning:
			return false, fmt.Sprintf("a task %s is %s", t.where(), t.Have), nil
		}
		running++
	}
	if running == 0 || (s.Replicas > 0 && running != s.Replicas) {
		return false, fmt.Sprintf("%d tasks run the spec, want %s", running, s.want()), nil
	}
	return true, "", nil
}

func (s RolloutState) want() string {
	if s.Replicas == 0 {
		return "one on every node"
	}
	return fmt.Sprint(s.Replicas)
}

// Engine is the part of the Docker client Wait uses.
type Engine interface {
	ServiceInspectWithRaw(ctx context.Context, serviceID string, opts swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error)
}

// Read asks the manager for the service's state.
func ReadRollout(ctx context.Context, cli Engine, service string) (RolloutState, error) {
	svc, _, err := cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		return RolloutState{}, err
	}
	s := RolloutState{}
	if spec := svc.Spec.TaskTemplate.ContainerSpec; spec != nil {
		s.Image, s.Spec = spec.Image, specJSON(spec)
	}
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		s.Replicas = int(*r.Replicas)
	}
	if u := svc.UpdateStatus; u != nil {
		s.UpdateState, s.UpdateMessage = u.State, u.Message
	}
	tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return RolloutState{}, err
	}
	for _, t := range tasks {
		task := Task{Node: t.NodeID, Desired: t.DesiredState, Have: t.Status.State}
		if spec := t.Spec.ContainerSpec; spec != nil {
			task.Image, task.Spec = spec.Image, specJSON(spec)
		}
		s.Tasks = append(s.Tasks, task)
	}
	return s, nil
}

// specJSON is spec as JSON: Swarm gives each task a copy of the service's.
func specJSON(spec *swarm.ContainerSpec) string {
	b, _ := json.Marshal(spec)
	return string(b)
}

// Wait polls until the rollout is over or timeout passes, and says how it ended.
func WaitRollout(ctx context.Context, cli Engine, service string, timeout time.Duration) (string, error) {
	start := time.Now()
	waiting := ""
	for {
		s, err := ReadRollout(ctx, cli, service)
		if err != nil {
			return "", fmt.Errorf("service %s: %w", service, err)
		}
		done, why, err := s.Done()
		if err != nil {
			return "", fmt.Errorf("service %s: %w", service, err)
		}
		if done {
			return fmt.Sprintf("service %s runs %s on every task (%s)", service, s.Image, time.Since(start).Round(time.Millisecond)), nil
		}
		waiting = why
		if time.Since(start) > timeout {
			return "", fmt.Errorf("service %s: its rollout is not over after %s: %s", service, timeout, waiting)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// RolloutTimeout bounds the wait once the provider calls the service converged.
const RolloutTimeout = 3 * time.Minute

// RolloutWait waits until Service, on the swarm whose manager is DockerHost, runs its current
// spec on every task. The docker provider calls a service converged once as many tasks run
// as it wants, which a rolling update also shows between two nodes (the new task on one, the
// old on the other): run after the service, this makes `pulumi up` return only when the
// update is complete, and fail when Swarm rolled it back.
type RolloutWait struct {
	DockerHost string // as DOCKER_HOST gives it; "" for DOCKER_HOST itself or the local engine
	Service    string
	Timeout    time.Duration // > 0
}

// Validate says what is wrong with g.
func (g RolloutWait) Validate() error {
	var problems []error
	if g.Service == "" {
		problems = append(problems, errors.New("service is required"))
	}
	if g.Timeout <= 0 {
		problems = append(problems, fmt.Errorf("timeout %v is not positive", g.Timeout))
	}
	return errors.Join(problems...)
}

// Args is the command line after RolloutWaitName that makes Main run g: Flags, then the service's
// name. The program builds it here and Main parses it here, so the two cannot drift apart.
func (g RolloutWait) Args() []string { return append(g.Flags(), g.Service) }

// Flags are Args without the service's name (the command provider appends it as create).
func (g RolloutWait) Flags() []string {
	return []string{"-docker-host=" + g.DockerHost, "-timeout=" + g.Timeout.String()}
}

// rolloutWaitMode is the rollout wait's command line: flags, then the service's name.
var rolloutWaitMode = Mode[RolloutWait]{
	Name:     RolloutWaitName,
	Synopsis: "[flags] SERVICE",
	About:    "waits until the swarm service runs its current spec on every task",
	Arg:      "the service",
	Flags: func() (*flag.FlagSet, *RolloutWait, func(string)) {
		g := &RolloutWait{}
		fs := flag.NewFlagSet(RolloutWaitName, flag.ContinueOnError)
		fs.StringVar(&g.DockerHost, "docker-host", "", "the engine, a swarm manager, as DOCKER_HOST gives it (empty: DOCKER_HOST)")
		fs.DurationVar(&g.Timeout, "timeout", RolloutTimeout, "how long to wait")
		return fs, g, func(service string) { g.Service = service }
	},
}

// Parse reads a command line made by Args (the arguments after RolloutWaitName) into a valid RolloutWait.
func ParseRolloutWait(args []string) (RolloutWait, error) { return rolloutWaitMode.Parse(args) }

// Run connects to the manager and waits.
func (g RolloutWait) Run(ctx context.Context) (string, error) {
	cli, err := engine.Connect(g.DockerHost)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	return WaitRollout(ctx, cli, g.Service, g.Timeout)
}
