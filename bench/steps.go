package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/example/custom-nginx/internal/testbed"
)

// stepKey is one step of an update: a resource, by the last part of its URN, and an op.
type stepKey struct {
	name string
	op   apitype.OpType
}

// stepClock times the steps of one `pulumi up` by the wall-clock time at which the CLI's
// engine events arrive: EngineEvent.Timestamp counts whole seconds, too coarse for steps
// that take a fraction of one. A step runs from its ResourcePreEvent to its ResOutputsEvent
// (or ResOpFailedEvent) of the same URN and op.
type stepClock struct {
	called time.Time     // when Up was called
	total  time.Duration // Up's call to its return

	mu            sync.Mutex
	firstResource time.Time // the first ResourcePreEvent of a resource other than the Stack
	began         map[stepKey]time.Time
	took          map[stepKey]time.Duration
	failed        map[stepKey]bool
	done          chan struct{} // closed when the event channel is
}

// stackType is the root resource, registered before the program runs.
const stackType = "pulumi:pulumi:Stack"

// eventsGrace is how long, after Up returned, the clock waits for the event stream to
// close: a CLI that failed before streaming never closes it.
const eventsGrace = 10 * time.Second

// timedUp runs `pulumi up` with opts and times it and its steps.
func timedUp(ctx context.Context, stack *testbed.Stack, opts ...optup.Option) (*stepClock, error) {
	c := &stepClock{began: map[stepKey]time.Time{}, took: map[stepKey]time.Duration{},
		failed: map[stepKey]bool{}, done: make(chan struct{})}
	ch := make(chan events.EngineEvent)
	go c.record(ch)
	c.called = time.Now()
	_, err := stack.Up(ctx, append(opts, optup.EventStreams(ch))...)
	c.total = time.Since(c.called)
	select {
	case <-c.done:
	case <-time.After(eventsGrace):
	}
	return c, err
}

// record notes when each event arrives. It takes the time first and holds the lock briefly:
// the Automation API hands every receiver each event in turn, so a slow one delays the others.
func (c *stepClock) record(ch <-chan events.EngineEvent) {
	defer close(c.done)
	for ev := range ch {
		now := time.Now()
		switch {
		case ev.ResourcePreEvent != nil && !ev.ResourcePreEvent.Planning:
			md := ev.ResourcePreEvent.Metadata
			c.mu.Lock()
			if c.firstResource.IsZero() && md.Type != stackType {
				c.firstResource = now
			}
			c.began[keyOf(md)] = now
			c.mu.Unlock()
		case ev.ResOutputsEvent != nil && !ev.ResOutputsEvent.Planning:
			c.end(keyOf(ev.ResOutputsEvent.Metadata), now, false)
		case ev.ResOpFailedEvent != nil:
			c.end(keyOf(ev.ResOpFailedEvent.Metadata), now, true)
		}
	}
}

func (c *stepClock) end(k stepKey, at time.Time, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if start, ok := c.began[k]; ok {
		c.took[k] = at.Sub(start)
		c.failed[k] = failed
	}
}

// keyOf is the step an event is about; the name is the URN's last part (urn:…::site-image).
func keyOf(md apitype.StepEventMetadata) stepKey {
	name := md.URN
	if i := strings.LastIndex(name, "::"); i >= 0 {
		name = name[i+2:]
	}
	return stepKey{name: name, op: md.Op}
}

// workOps are the ops that do a resource's work: a first create, a replacement's create, an
// update in place. The logical "replace" step between them takes no time of its own.
var workOps = []apitype.OpType{apitype.OpCreate, apitype.OpCreateReplacement, apitype.OpUpdate}

// work is how long name's work step took, and its op; ok is false if it had none.
func (c *stepClock) work(name string) (d time.Duration, op apitype.OpType, ok bool) {
	for _, op := range workOps {
		if d, ok := c.took[stepKey{name, op}]; ok {
			return d, op, true
		}
	}
	return 0, "", false
}

// siteSteps are the steps of a deployment in the order they run, by resource name.
var siteSteps = []struct{ name, what string }{
	{"site-push-check", "may the credentials push?"},
	{"site-image", "build"},
	{"site-preflight", "the build in a throwaway container"},
	{"site-push", "push"},
	{"site-nginx", "start the new nginx"},
	{"site-smoke-check", "the site serves the page"},
}

// addRows reports where the up's time went, a row per step, prefixed with what ("first
// up"). withDelete adds the old nginx's delete, which only a replacement has.
func (c *stepClock) addRows(t *table, what string, withDelete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	accounted := time.Duration(0)
	if c.firstResource.IsZero() {
		t.add(what+": program start", "no resource event", "")
	} else {
		start := c.firstResource.Sub(c.called)
		accounted += start
		t.add(what+": program start", secs(start), "Up called → first resource event: CLI start, the program's Go build and run, plugins")
	}
	for _, s := range siteSteps {
		d, op, ok := c.work(s.name)
		if !ok {
			t.add(fmt.Sprintf("%s: %s (%s)", what, s.name, s.what), "no step", "the up left it as it was")
			continue
		}
		accounted += d
		t.add(fmt.Sprintf("%s: %s (%s)", what, s.name, s.what), secs(d), c.opNote(stepKey{s.name, op}))
	}
	if withDelete {
		k := stepKey{"site-nginx", apitype.OpDeleteReplaced}
		if d, ok := c.took[k]; ok {
			accounted += d
			t.add(what+": site-nginx delete of the old one", secs(d), c.opNote(k)+"; after the new one serves")
		} else {
			t.add(what+": site-nginx delete of the old one", "no step", "")
		}
	}
	t.add(what+": rest (between steps and after them)", secs(c.total-accounted), "the engine's own work: the component, providers, other deletes, state, exit")
	t.add(what+": total", secs(c.total), "Up's call to its return")
}

// opNote is a step's op as the engine named it, and whether it failed.
func (c *stepClock) opNote(k stepKey) string {
	note := "op " + string(k.op)
	if c.failed[k] {
		note += ", failed"
	}
	return note
}
