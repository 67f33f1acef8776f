package subcommand

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/example/custom-nginx/internal/config"
)

// SmokeCheckName is the program's first argument that selects the smoke check; the rest of
// the command line is SmokeCheck.Args, which Main parses: flags, then the URL.
const SmokeCheckName = "smoke-check"

// The smoke check's defaults: 100 tries 0.1 s apart, about 10 s for a container to start.
const (
	SmokeCheckAttempts       = 100
	SmokeCheckInterval       = 100 * time.Millisecond
	SmokeCheckRequestTimeout = 2 * time.Second
)

// SmokeCheck proves that URL serves the page whose SHA-256 is SHA256, byte for byte: the
// stack runs it once the site is deployed.
type SmokeCheck struct {
	URL            string        // absolute http or https URL
	SHA256         string        // lowercase hex of the expected body's SHA-256
	Attempts       int           // tries at most, >= 1
	Interval       time.Duration // wait after a failed try, > 0
	RequestTimeout time.Duration // bounds each try, body included, > 0
	// TrustedCA is PEM of CAs trusted beside the system's roots for an https URL: a private
	// CA's, or a test's. "" trusts the system's alone.
	TrustedCA string
}

// Validate says what is wrong with c, so that a typo fails at once instead of after
// Attempts tries.
func (c SmokeCheck) Validate() error {
	var problems []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		problems = append(problems, errors.New("url is required"))
	case err != nil:
		problems = append(problems, fmt.Errorf("url: %v", err))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		problems = append(problems, fmt.Errorf("url %q is not an absolute http or https URL", c.URL))
	}
	if !isSHA256Hex(c.SHA256) {
		problems = append(problems, fmt.Errorf("sha256 %q is not 64 lowercase hex digits", c.SHA256))
	}
	if c.Attempts < 1 {
		problems = append(problems, fmt.Errorf("attempts %d is less than 1", c.Attempts))
	}
	if c.Interval <= 0 {
		problems = append(problems, fmt.Errorf("interval %v is not positive", c.Interval))
	}
	if c.RequestTimeout <= 0 {
		problems = append(problems, fmt.Errorf("timeout %v is not positive", c.RequestTimeout))
	}
	if c.TrustedCA != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.TrustedCA)) {
		problems = append(problems, errors.New("trusted-ca holds no PEM certificate"))
	}
	return errors.Join(problems...)
}

// isSHA256Hex accepts only what hex.EncodeToString of a SHA-256 gives, so the comparison
// with the served body's digest can be a plain string comparison.
func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// Run fetches c.URL until the body's SHA-256 is c.SHA256 with status 200, at most
// c.Attempts times. It returns the success message, or an error naming what was expected,
// what was served last and how many tries were made; it stops early when ctx ends.
func (c SmokeCheck) Run(ctx context.Context) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	roots, err := config.TrustedRoots(c.TrustedCA)
	if err != nil {
		return "", err
	}
	client := &http.Client{
		Transport: &http.Transport{
			// Like curl, honour HTTP(S)_PROXY and NO_PROXY (loopback never goes through a proxy).
			Proxy: http.ProxyFromEnvironment,
			// Each try is a new connection, as a person opening the site would make.
			DisableKeepAlives: true,
			// The chain is verified as a browser would, and HTTP/2 offered as a browser does.
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: true,
		},
		// The page must be served at URL itself, as curl without -L required: a redirect
		// is reported with its status, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	start := time.Now()
	var last string // Validate made Attempts >= 1: at least one try sets it
	n := 0
	for n < c.Attempts {
		n++
		got, ok := c.try(ctx, client)
		if ok {
			return fmt.Sprintf("custom page served at %s (sha256 %s, %s, attempt %d)", c.URL, c.SHA256, got, n), nil
		}
		last = got
		if n == c.Attempts {
			break
		}
		timer := time.NewTimer(c.Interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return "", fmt.Errorf("%s: %w", c.failure(n, start, last), ctx.Err())
		case <-timer.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", c.failure(n, start, last), err)
	}
	return "", errors.New(c.failure(n, start, last))
}

func (c SmokeCheck) failure(n int, start time.Time, last string) string {
	attempts := "attempts"
	if n == 1 {
		attempts = "attempt"
	}
	return fmt.Sprintf("the custom page is not served at %s after %d %s (%v): want sha256 %s, last got %s",
		c.URL, n, attempts, time.Since(start).Round(time.Millisecond), c.SHA256, last)
}

// try makes one request and says what it got: the body's digest and status, or the error.
func (c SmokeCheck) try(ctx context.Context, client *http.Client) (got string, ok bool) {
	reqCtx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	defer cancel()
	// A bare "context deadline exceeded" would not say whose deadline it was.
	describe := func(err error) string {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Sprintf("no complete answer within the %v timeout (%v)", c.RequestTimeout, err)
		}
		return err.Error() // names the URL and the cause, e.g. connection refused
	}
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, c.URL, nil)
	if err != nil {
		return err.Error(), false
	}
	resp, err := client.Do(req)
	var unverified *tls.CertificateVerificationError
	if errors.As(err, &unverified) {
		return fmt.Sprintf("a certificate this client cannot verify (%v): the chain must lead to the system's roots, or to a CA in tlsTrustedCA", unverified.Err), false
	}
	if err != nil {
		return describe(err), false
	}
	defer resp.Body.Close()
	// Hash while reading: the page is never held in memory, whatever its size.
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return fmt.Sprintf("HTTP %s, then reading the body: %s", resp.Status, describe(err)), false
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if resp.StatusCode == http.StatusOK && sum == c.SHA256 {
		return resp.Proto, true
	}
	// Only a 200 counts: an error page that happens to hold the page's bytes is no proof.
	return fmt.Sprintf("sha256 %s (HTTP %s)", sum, resp.Status), false
}

// Args is the command line after SmokeCheckName that makes Main run c: Flags, then the URL. The
// program builds it here and Main parses it here, so the two cannot drift apart.
func (c SmokeCheck) Args() []string { return append(c.Flags(), c.URL) }

// Flags are Args without the URL. One flag per element, -name=value, so no value can be
// taken for a flag.
func (c SmokeCheck) Flags() []string {
	flags := []string{
		"-sha256=" + c.SHA256,
		"-attempts=" + strconv.Itoa(c.Attempts),
		"-interval=" + c.Interval.String(), // Duration.String round-trips through ParseDuration
		"-timeout=" + c.RequestTimeout.String(),
	}
	if c.TrustedCA != "" { // left out without one, so a plain site's command stays as it was
		flags = append(flags, "-trusted-ca="+c.TrustedCA)
	}
	return flags
}

// smokeCheckMode is the smoke check's command line: flags, then the URL.
var smokeCheckMode = Mode[SmokeCheck]{
	Name:     SmokeCheckName,
	Synopsis: "-sha256 HEX [flags] URL",
	About:    "fetches the http or https URL until it serves a body with that SHA-256",
	Arg:      "the URL",
	Flags: func() (*flag.FlagSet, *SmokeCheck, func(string)) {
		c := &SmokeCheck{}
		fs := flag.NewFlagSet(SmokeCheckName, flag.ContinueOnError)
		fs.StringVar(&c.SHA256, "sha256", "", "lowercase `hex` SHA-256 of the expected body")
		fs.IntVar(&c.Attempts, "attempts", SmokeCheckAttempts, "tries at most")
		fs.DurationVar(&c.Interval, "interval", SmokeCheckInterval, "wait after a failed try")
		fs.DurationVar(&c.RequestTimeout, "timeout", SmokeCheckRequestTimeout, "bound of each try")
		fs.StringVar(&c.TrustedCA, "trusted-ca", "", "`PEM` of CAs trusted beside the system's roots")
		return fs, c, func(url string) { c.URL = url }
	},
}

// Parse reads a command line made by Args (the arguments after SmokeCheckName) into a valid SmokeCheck.
// Omitted flags take the defaults; -sha256 and the URL are required.
func ParseSmokeCheck(args []string) (SmokeCheck, error) { return smokeCheckMode.Parse(args) }
