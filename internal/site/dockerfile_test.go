package site_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/testsupport"
)

// TestDockerfile checks app/Dockerfile, parsed as BuildKit parses it, against hadolint's
// rules that apply to it and against site.Runtime, which the container repeats.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join(projectRoot, "app", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parsed, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	args := func(n *parser.Node) []string {
		var out []string
		for a := n.Next; a != nil; a = a.Next {
			out = append(out, a.Value)
		}
		return out
	}
	byInstruction := map[string][]*parser.Node{}
	for _, n := range parsed.AST.Children {
		key := strings.ToLower(n.Value)
		byInstruction[key] = append(byInstruction[key], n)
	}
	rt := site.Runtime

	// FROM the build arg, whose default is pinned (DL3006, DL3007).
	if from := byInstruction["from"]; len(from) != 1 || args(from[0])[0] != "${"+site.BaseImageArg+"}" {
		t.Errorf("want one FROM ${%s}", site.BaseImageArg)
	}
	if base, err := testsupport.DefaultBaseImage(filepath.Join(projectRoot, "app")); err != nil {
		t.Error(err)
	} else if err := config.ValidateBaseImage(base); err != nil {
		t.Errorf("ARG %s default: %v", site.BaseImageArg, err)
	}
	if len(byInstruction["add"]) > 0 {
		t.Error("ADD used: COPY is the rule (DL3020)")
	}
	if cmd := byInstruction["cmd"]; len(cmd) != 1 || !cmd[0].Attributes["json"] {
		t.Error("want one CMD in JSON form (DL3025)")
	}
	if users := byInstruction["user"]; len(users) == 0 {
		t.Error("no USER: the image would run as root (DL3002)")
	} else if last := args(users[len(users)-1])[0]; last != rt.User {
		t.Errorf("last USER %q, want the runtime's non-root %q", last, rt.User)
	}
	if expose := byInstruction["expose"]; len(expose) != 1 || args(expose[0])[0] != fmt.Sprint(rt.ContainerPort) {
		t.Errorf("want EXPOSE %d", rt.ContainerPort)
	}
	if stop := byInstruction["stopsignal"]; len(stop) != 1 || args(stop[0])[0] != rt.StopSignal {
		t.Errorf("want STOPSIGNAL %s", rt.StopSignal)
	}

	// HEALTHCHECK equal to the container's.
	hc := byInstruction["healthcheck"]
	if len(hc) != 1 {
		t.Fatal("want one HEALTHCHECK")
	}
	h := rt.Health
	wantFlags := []string{"--interval=" + h.Interval.String(), "--timeout=" + h.Timeout.String(),
		"--start-period=" + h.StartPeriod.String(), "--retries=" + fmt.Sprint(h.Retries)}
	if !slices.Equal(hc[0].Flags, wantFlags) {
		t.Errorf("HEALTHCHECK flags %q, want %q", hc[0].Flags, wantFlags)
	}
	if test := args(hc[0]); !hc[0].Attributes["json"] || !slices.Equal(test, h.Test) {
		t.Errorf("HEALTHCHECK %q (JSON form %v), want %q in JSON form", test, hc[0].Attributes["json"], h.Test)
	}
}
