package subcommand

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var validPreflight = Preflight{DockerHost: "ssh://deploy@manager", Image: "sha256:" + strings.Repeat("1", 64), SHA256: strings.Repeat("a", 64),
	HostIP: "127.0.0.1", SiteHost: "manager", Timeout: 20 * time.Second}

func TestPreflightArgsRoundTrip(t *testing.T) {
	parsed, err := ParsePreflight(validPreflight.Args())
	if err != nil || parsed != validPreflight {
		t.Errorf("ParsePreflight(Args()) = %+v, %v; want %+v", parsed, err, validPreflight)
	}
	if got := validPreflight.Args()[len(validPreflight.Args())-1]; got != validPreflight.Image {
		t.Errorf("the image is the last argument, as the command provider appends create; got %q", got)
	}
}

func TestPreflightParseRefuses(t *testing.T) {
	// with is valid's command line with one flag more, after its own: the last one counts.
	with := func(flag string) []string { return append(append(validPreflight.Flags(), flag), validPreflight.Image) }
	for name, args := range map[string][]string{
		"no image":         validPreflight.Flags(),
		"two images":       append(validPreflight.Args(), "extra"),
		"no page checksum": {"-host-ip=127.0.0.1", validPreflight.Image},
		"a host-ip no IP":  with("-host-ip=localhost"),
		"a site host URL":  with("-site-host=http://x/"),
		"a zero timeout":   with("-timeout=0s"),
		"an unknown flag":  with("-port=1"),
	} {
		if c, err := ParsePreflight(args); err == nil {
			t.Errorf("%s: ParsePreflight(%q) = %+v, want an error", name, args, c)
		}
	}
}

func TestPreflightUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := preflightMode.Main(nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: "+PreflightName) {
		t.Errorf("Main() = %d, stderr %q; want 2 and the usage", code, stderr.String())
	}
}
