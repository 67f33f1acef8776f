package preflight

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var valid = Check{DockerHost: "ssh://deploy@manager", Image: "sha256:" + strings.Repeat("1", 64), SHA256: strings.Repeat("a", 64),
	HostIP: "127.0.0.1", SiteHost: "manager", Timeout: 20 * time.Second}

func TestArgsRoundTrip(t *testing.T) {
	parsed, err := Parse(valid.Args())
	if err != nil || parsed != valid {
		t.Errorf("Parse(Args()) = %+v, %v; want %+v", parsed, err, valid)
	}
	if got := valid.Args()[len(valid.Args())-1]; got != valid.Image {
		t.Errorf("the image is the last argument, as the command provider appends create; got %q", got)
	}
}

func TestParseRefuses(t *testing.T) {
	// with is valid's command line with one flag more, after its own: the last one counts.
	with := func(flag string) []string { return append(append(valid.Flags(), flag), valid.Image) }
	for name, args := range map[string][]string{
		"no image":         valid.Flags(),
		"two images":       append(valid.Args(), "extra"),
		"no page checksum": {"-host-ip=127.0.0.1", valid.Image},
		"a host-ip no IP":  with("-host-ip=localhost"),
		"a site host URL":  with("-site-host=http://x/"),
		"a zero timeout":   with("-timeout=0s"),
		"an unknown flag":  with("-port=1"),
	} {
		if c, err := Parse(args); err == nil {
			t.Errorf("%s: Parse(%q) = %+v, want an error", name, args, c)
		}
	}
}

func TestMainUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: "+Command) {
		t.Errorf("Main() = %d, stderr %q; want 2 and the usage", code, stderr.String())
	}
}
