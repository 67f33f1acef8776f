package subcommand

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func TestRolloutDone(t *testing.T) {
	const image, old = "reg/site@sha256:new", "reg/site@sha256:old"
	running := func(node, img string) Task {
		return Task{Node: node, Image: img, Desired: swarm.TaskStateRunning, Have: swarm.TaskStateRunning}
	}
	past := Task{Node: "b", Image: old, Desired: swarm.TaskStateShutdown, Have: swarm.TaskStateShutdown}
	tests := []struct {
		name    string
		state   RolloutState
		done    bool
		waiting string // what it waits for, when not done
		err     string // why Swarm gave up, when done with an error
	}{
		{"every task runs the spec", RolloutState{Image: image, Replicas: 2, UpdateState: swarm.UpdateStateCompleted, Tasks: []Task{running("a", image), running("b", image), past}}, true, "", ""},
		{"created, never updated", RolloutState{Image: image, Replicas: 1, Tasks: []Task{running("a", image)}}, true, "", ""},
		{"global: one on each node", RolloutState{Image: image, Tasks: []Task{running("a", image), running("b", image)}}, true, "", ""},
		// The provider counts this as converged: two tasks run.
		{"between two nodes of a rolling update", RolloutState{Image: image, Replicas: 2, UpdateState: swarm.UpdateStateUpdating, Tasks: []Task{running("a", image), running("b", old)}}, false, "node b still runs " + old, ""},
		{"the old task of the next node stopping", RolloutState{Image: image, Replicas: 2, UpdateState: swarm.UpdateStateUpdating,
			Tasks: []Task{running("a", image), {Node: "b", Image: old, Desired: swarm.TaskStateShutdown, Have: swarm.TaskStateRunning}}}, false, "node b is stopping", ""},
		{"the new task of the next node not yet running", RolloutState{Image: image, Replicas: 2, UpdateState: swarm.UpdateStateUpdating,
			Tasks: []Task{running("a", image), past, {Node: "b", Image: image, Desired: swarm.TaskStateReady, Have: swarm.TaskStatePreparing}}}, false, "node b is preparing", ""},
		{"an unplaced task no longer wanted", RolloutState{Image: image, Replicas: 1, Tasks: []Task{running("a", image), {Image: old, Desired: swarm.TaskStateShutdown, Have: swarm.TaskStatePending}}}, true, "", ""},
		{"a task that cannot be placed", RolloutState{Image: image, Replicas: 2, Tasks: []Task{running("a", image), {Image: image, Desired: swarm.TaskStateRunning, Have: swarm.TaskStatePending}}}, false, "not yet placed on a node is pending", ""},
		{"same image, a new spec (a new certificate) not yet on node b", RolloutState{Image: image, Spec: "new", Replicas: 2, UpdateState: swarm.UpdateStateUpdating,
			Tasks: []Task{{Node: "a", Image: image, Spec: "new", Desired: swarm.TaskStateRunning, Have: swarm.TaskStateRunning}, running("b", image)}}, false, "node b still runs the previous spec", ""},
		{"a task missing", RolloutState{Image: image, Replicas: 2, Tasks: []Task{running("a", image), past}}, false, "1 tasks run the spec, want 2", ""},
		{"no task yet", RolloutState{Image: image}, false, "0 tasks run the spec, want one on every node", ""},
		{"rolling back", RolloutState{Image: old, UpdateState: swarm.UpdateStateRollbackStarted, UpdateMessage: "update rolled back due to failure"}, false, "rolling the update back", ""},
		{"rolled back", RolloutState{Image: old, UpdateState: swarm.UpdateStateRollbackCompleted, UpdateMessage: "update rolled back due to failure or early termination of task x"}, true, "", "rolled the update back (rollback_completed): update rolled back due to failure"},
		{"paused", RolloutState{Image: image, UpdateState: swarm.UpdateStatePaused, UpdateMessage: "update paused due to failure"}, true, "", "paused the update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, waiting, err := tt.state.Done()
			if done != tt.done || !strings.Contains(waiting, tt.waiting) || (tt.waiting == "" && waiting != "") {
				t.Errorf("Done() = %v, %q; want %v, %q", done, waiting, tt.done, tt.waiting)
			}
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestRolloutWaitUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-timeout=0s", "svc"}, {"svc", "extra"}, {"-unknown", "svc"}} {
		var stdout, stderr bytes.Buffer
		if code := rolloutWaitMode.Main(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("Main(%q) = %d, stderr %q; want 2 and a usage message", args, code, stderr.String())
		}
	}
}

func TestRolloutWaitArgsRoundTrip(t *testing.T) {
	g := RolloutWait{DockerHost: "ssh://deploy@manager", Service: "custom-nginx-dev", Timeout: 90 * time.Second}
	want := []string{"-docker-host=ssh://deploy@manager", "-timeout=1m30s", "custom-nginx-dev"}
	if args := g.Args(); strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("Args = %q, want %q", args, want)
	}
	if parsed, err := ParseRolloutWait(g.Args()); err != nil || parsed != g {
		t.Errorf("ParseRolloutWait(Args()) = %+v, %v; want %+v", parsed, err, g)
	}
	if parsed, err := ParseRolloutWait([]string{"svc"}); err != nil || parsed.Timeout != RolloutTimeout || parsed.DockerHost != "" {
		t.Errorf("ParseRolloutWait(svc) = %+v, %v; want the default timeout and DOCKER_HOST's engine", parsed, err)
	}
}
