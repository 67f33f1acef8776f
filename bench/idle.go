package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/testbed"
)

// cpuTimes are the machine's CPU jiffies from /proc/stat's first line: busy (user, nice,
// system, irq, softirq, steal) and total (those, idle and iowait). guest and guest_nice are
// already counted in user and nice.
type cpuTimes struct{ busy, total uint64 }

func readCPUTimes() (cpuTimes, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat begins %q, not the cpu line with 8 counters", line)
	}
	var n [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range n {
		if n[i], err = strconv.ParseUint(fields[i+1], 10, 64); err != nil {
			return cpuTimes{}, err
		}
	}
	var c cpuTimes
	for i, v := range n {
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	return c, nil
}

// machineCPU is the whole machine's CPU use over d, in % of one core (100 % is one core
// busy; a machine of n cores goes up to n × 100 %).
func machineCPU(d time.Duration) (float64, error) {
	before, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	total := after.total - before.total
	if total == 0 {
		return 0, errors.New("/proc/stat did not move")
	}
	return float64(after.busy-before.busy) / float64(total) * float64(runtime.NumCPU()) * 100, nil
}

// settle is the pause before each idle measurement: what ran before it (the up, wrk, a
// stopping container) has ended and the machine is as quiet as it gets.
const settle = 3 * time.Second

// idleCost measures the machine's CPU over d with the stack's site up and nobody visiting,
// then with the site's containers stopped (nginx first, then the port holder), and starts
// them again (the holder first: nginx joins its network) until the page is served.
func idleCost(ctx context.Context, e *testbed.Engine, stack *testbed.Stack, url string, d time.Duration) (running, stopped float64, err error) {
	containers, err := siteContainers(ctx, stack)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(settle)
	if running, err = machineCPU(d); err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, startAgain(ctx, e, containers, url)) }()
	for _, name := range containers {
		if err := e.ContainerStop(ctx, name, container.StopOptions{}); err != nil {
			return 0, 0, err
		}
	}
	time.Sleep(settle)
	stopped, err = machineCPU(d)
	return running, stopped, err
}

// siteContainers are the stack's nginx (its containerName output) and port holder
// (<project>-<stack>-port), in the order they stop.
func siteContainers(ctx context.Context, stack *testbed.Stack) ([]string, error) {
	outputs, err := stack.Outputs(ctx)
	if err != nil {
		return nil, err
	}
	nginx, _ := outputs["containerName"].Value.(string)
	if nginx == "" {
		return nil, errors.New("the stack has no containerName output")
	}
	project, err := stack.Workspace().ProjectSettings(ctx)
	if err != nil {
		return nil, err
	}
	return []string{nginx, string(project.Name) + "-" + stack.Name + site.PortHolderSuffix}, nil
}

// startAgain starts stopped containers in the reverse order and waits for the page.
func startAgain(ctx context.Context, e *testbed.Engine, stopped []string, url string) error {
	for i := len(stopped) - 1; i >= 0; i-- {
		if err := e.ContainerStart(ctx, stopped[i], container.StartOptions{}); err != nil {
			return err
		}
	}
	_, err := testbed.WaitServed(url, 30*time.Second)
	return err
}

// addIdleRows reports the idle CPU with the site running and stopped, and the difference.
func addIdleRows(t *table, running, stopped float64, d time.Duration) {
	note := fmt.Sprintf("whole machine, busy jiffies of /proc/stat over %s, %% of one core: whatever else runs counts too, so only a quiet machine's figures mean anything", d)
	t.add("idle CPU, site running, nobody visiting", fmt.Sprintf("%.2f %%", running), note)
	t.add("idle CPU, site's containers stopped", fmt.Sprintf("%.2f %%", stopped), "docker stop of nginx, then of the port holder")
	t.add("idle cost of a running site", fmt.Sprintf("%.2f %% of one core (running %.2f %%, stopped %.2f %%)", running-stopped, running, stopped),
		fmt.Sprintf("what the site costs at rest: chiefly its healthcheck, a wget every %s", engine.Hardened.Health.Interval))
}
