package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/example/custom-nginx/internal/testbed"
)

// wrkResult is what wrk's text output says: the rate, the requests, and each kind of
// failure it counts. wrk prints the error lines only when there were errors.
type wrkResult struct {
	rps                           float64
	requests                      int
	connect, read, write, timeout int // "Socket errors: connect N, read N, write N, timeout N"
	non2xx3xx                     int // "Non-2xx or 3xx responses: N"
}

func (w wrkResult) errors() int { return w.connect + w.read + w.write + w.timeout + w.non2xx3xx }

func (w wrkResult) socketErrors() string {
	return fmt.Sprintf("connect %d, read %d, write %d, timeout %d", w.connect, w.read, w.write, w.timeout)
}

var (
	rpsLine      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	requestsLine = regexp.MustCompile(`(\d+) requests in `)
	non2xxLine   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	socketLine   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's text output; a missing Requests/sec line means wrk did not run.
func parseWrk(out []byte) (wrkResult, error) {
	m := rpsLine.FindSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	var w wrkResult
	w.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	atoi := func(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }
	if m := requestsLine.FindSubmatch(out); m != nil {
		w.requests = atoi(m[1])
	}
	if m := non2xxLine.FindSubmatch(out); m != nil {
		w.non2xx3xx = atoi(m[1])
	}
	if m := socketLine.FindSubmatch(out); m != nil {
		w.connect, w.read, w.write, w.timeout = atoi(m[1]), atoi(m[2]), atoi(m[3]), atoi(m[4])
	}
	return w, nil
}

// wrkDuration is wrk's -d flag for d, in whole seconds: wrk takes one number and one unit, so
// d.String()'s "1m30s" would not do.
func wrkDuration(d time.Duration) string {
	return fmt.Sprintf("-d%ds", int(d.Round(time.Second).Seconds()))
}

// loadedUp is one `up` run inside a wrk run and a probe: what visitors saw meanwhile.
type loadedUp struct {
	wrk        wrkResult
	probe      testbed.ProbeResult
	up         time.Duration
	upOutlived bool // the up ended after wrk: its end went unloaded
}

// wrkLead is how long wrk runs before the up starts: its connections are open and busy
// when the up begins, as a site's visitors are.
const wrkLead = time.Second

// upUnderLoad runs wrk (keep-alive connections, as browsers hold them) and the probe (a new
// connection for every request) against url while stack runs `up` with opts. wrk runs for
// d, which has to cover the up; the probe stops when wrk does, so both see the same window.
func upUnderLoad(ctx context.Context, stack *testbed.Stack, url string, conns int, d time.Duration, opts ...optup.Option) (loadedUp, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", conns), wrkDuration(d), "--latency", url)
	cmd.Stdout, cmd.Stderr = &out, &out
	probe := testbed.StartProbe([]string{url}, time.Second)
	if err := cmd.Start(); err != nil {
		probe.Stop()
		return loadedUp{}, fmt.Errorf("wrk: %w", err)
	}
	var wrkEnd time.Time
	waited := make(chan error, 1)
	go func() { err := cmd.Wait(); wrkEnd = time.Now(); waited <- err }()
	time.Sleep(wrkLead)
	begin := time.Now()
	_, upErr := stack.Up(ctx, opts...)
	upEnd := time.Now()
	wrkErr := <-waited
	r := loadedUp{probe: probe.Stop(), up: upEnd.Sub(begin), upOutlived: upEnd.After(wrkEnd)}
	if upErr != nil {
		return r, upErr
	}
	if wrkErr != nil {
		return r, fmt.Errorf("wrk: %v\n%s", wrkErr, out.String())
	}
	var err error
	r.wrk, err = parseWrk(out.Bytes())
	return r, err
}

// addRows reports one loaded up: wrk's socket errors, its non-2xx/3xx responses and the
// probe's failed requests, each a row of its own.
func (r loadedUp) addRows(t *table, what string, conns int, d time.Duration) {
	note := fmt.Sprintf("wrk -c%d -t2 -d%s --latency, keep-alive; %d requests (%.0f/s); up took %s",
		conns, d, r.wrk.requests, r.wrk.rps, r.up.Round(10*time.Millisecond))
	if r.upOutlived {
		note += "; the up outlasted wrk: raise -wrk-during-up"
	}
	t.add("wrk through "+what+": socket errors", r.wrk.socketErrors(), note)
	t.add("wrk through "+what+": non-2xx/3xx responses", strconv.Itoa(r.wrk.non2xx3xx), "")
	probeNote := fmt.Sprintf("a request every %s on a new connection, 1 s per try, one retry; longest gap %s",
		testbed.ProbeInterval, r.probe.LongestGap.Round(10*time.Millisecond))
	if len(r.probe.Failures) > 0 {
		probeNote += "; first: " + r.probe.Failures[0]
	}
	t.add("probe beside wrk through "+what+": failed requests", fmt.Sprintf("%d of %d", r.probe.Failed, r.probe.Requests), probeNote)
}
