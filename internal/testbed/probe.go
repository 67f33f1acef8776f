package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Probe is what a visitor, or a load balancer in front of several nodes, sees while a
// deployment changes: every Interval it fetches the next URL in turn and, when that fails,
// retries once on the one after (with a single URL, the same one again).
type Probe struct {
	done chan struct{}
	wg   sync.WaitGroup
	res  ProbeResult
}

// ProbeResult counts the probe's requests and keeps the first failures and the longest
// stretch in which no request got the page.
type ProbeResult struct {
	Requests, Retried, Failed int
	Failures                  []string // the first few, with when and what each try said
	LongestGap                time.Duration
}

// ProbeInterval is the pause between two requests of a probe.
const ProbeInterval = 20 * time.Millisecond

// StartProbe starts probing urls; each try waits at most timeout for the whole answer. It
// stops by itself after 10 minutes.
func StartProbe(urls []string, timeout time.Duration) *Probe {
	return StartProbeTrusting(urls, timeout, nil)
}

// StartProbeTrusting is StartProbe of https urls whose certificates roots verify (nil: the
// system's roots).
func StartProbeTrusting(urls []string, timeout time.Duration, roots *x509.CertPool) *Probe {
	p := &Probe{done: make(chan struct{})}
	// A new connection for every try, as separate visitors make: each a full handshake.
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	get := func(u string) error {
		resp, err := client.Get(u)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
		}
		return nil
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		start, limit := time.Now(), time.After(10*time.Minute)
		var downSince time.Time
		defer func() { // a stretch still open at the end counts too
			if !downSince.IsZero() {
				p.res.LongestGap = max(p.res.LongestGap, time.Since(downSince))
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-p.done:
				return
			case <-limit:
				return
			case <-time.After(ProbeInterval):
			}
			p.res.Requests++
			err := get(urls[i%len(urls)])
			if err != nil {
				p.res.Retried++
				if again := get(urls[(i+1)%len(urls)]); again != nil {
					p.res.Failed++
					if len(p.res.Failures) < 5 {
						p.res.Failures = append(p.res.Failures, fmt.Sprintf("at %s: %v; then %v", time.Since(start).Round(time.Millisecond), err, again))
					}
				} else {
					err = nil
				}
			}
			switch {
			case err != nil && downSince.IsZero():
				downSince = time.Now()
			case err == nil && !downSince.IsZero():
				p.res.LongestGap = max(p.res.LongestGap, time.Since(downSince))
				downSince = time.Time{}
			}
		}
	}()
	return p
}

// Stop ends the probe and returns what it saw.
func (p *Probe) Stop() ProbeResult {
	close(p.done)
	p.wg.Wait()
	return p.res
}
