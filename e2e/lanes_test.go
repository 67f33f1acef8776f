package e2e

import (
	"flag"
	"sync"
	"testing"
)

// A lane runs its tests one at a time, beside the other lane. The long tests wait most of
// their time on engines, registries and health checks (one at a time, they left two cores
// idle more than half the time), so the two lanes run side by side; the short tests run
// first, alone. Which lane a test takes follows from what it shares.
type lane struct{ mu sync.Mutex }

var (
	// onMachineEngine is the lane of the tests that use this machine's engine: their builds,
	// preflights and leftovers checks would mix there.
	onMachineEngine lane
	// offMachineEngine is the lane of the tests on engines of their own (a test Docker Hub's,
	// a swarm's nodes) or on none; one at a time, because two cores are all there is.
	offMachineEngine lane
)

// join makes t a parallel test that runs when its lane is free and frees the lane when t
// and its cleanups end. It is the first thing such a test does.
func (l *lane) join(t *testing.T) {
	t.Parallel()
	l.mu.Lock()
	t.Cleanup(l.mu.Unlock) // registered first, so it runs last
}

// leaveRoomForLanes lets every parallel test start, unless -parallel was given: a test
// waiting for its lane holds one of go test's places, and with -parallel's default (the
// number of CPUs) two tests of one lane could hold them all while the other lane waits.
func leaveRoomForLanes() {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", "64")
	}
}
