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
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/site"
)

// stage is one build stage of a Dockerfile: its FROM and its instructions by name (lower case).
type stage struct {
	from         *parser.Node
	name         string // the FROM's AS name, or ""
	byInstr      map[string][]*parser.Node
	instructions []*parser.Node
}

// args is the arguments of an instruction.
func args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// flag is the value of an instruction's --name=value flag, and whether it has one.
func flag(n *parser.Node, name string) (string, bool) {
	for _, f := range n.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// parseDockerfile parses app/Dockerfile as BuildKit does and returns the instructions before
// the first FROM and the stages.
func parseDockerfile(t *testing.T) (global []*parser.Node, stages []*stage) {
	t.Helper()
	f, err := os.Open(filepath.Join(projectRoot, "app", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parsed, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range parsed.AST.Children {
		key := strings.ToLower(n.Value)
		if key == "from" {
			s := &stage{from: n, byInstr: map[string][]*parser.Node{}}
			if a := args(n); len(a) == 3 && strings.EqualFold(a[1], "AS") {
				s.name = a[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			global = append(global, n)
			continue
		}
		s := stages[len(stages)-1]
		s.byInstr[key] = append(s.byInstr[key], n)
		s.instructions = append(s.instructions, n)
	}
	return global, stages
}

// argDefault is the default that an ARG among global gives name.
func argDefault(global []*parser.Node, name string) (string, bool) {
	for _, n := range global {
		if strings.EqualFold(n.Value, "ARG") && n.Next != nil {
			if arg, value, ok := strings.Cut(n.Next.Value, "="); ok && arg == name {
				return value, true
			}
		}
	}
	return "", false
}

// TestDockerfile checks app/Dockerfile, parsed as BuildKit parses it, against hadolint's
// rules that apply to it and against engine.Hardened, which the container repeats: a
// config-check stage that runs nginx -t on the build platform, then the image itself.
func TestDockerfile(t *testing.T) {
	global, stages := parseDockerfile(t)
	rt := engine.Hardened
	baseRef := "${" + site.BaseImageArg + "}"

	// Two stages, both FROM the build arg, whose default is pinned (DL3006, DL3007).
	if len(stages) != 2 {
		t.Fatalf("want 2 stages (config check, image), got %d", len(stages))
	}
	check, final := stages[0], stages[1]
	for _, s := range stages {
		if a := args(s.from); len(a) == 0 || a[0] != baseRef {
			t.Errorf("FROM %q, want FROM %s", a, baseRef)
		}
	}
	if base, ok := argDefault(global, site.BaseImageArg); !ok {
		t.Errorf("no default for ARG %s before the first FROM", site.BaseImageArg)
	} else if err := config.ValidateBaseImage(base); err != nil {
		t.Errorf("ARG %s default: %v", site.BaseImageArg, err)
	}
	for _, s := range stages {
		if len(s.byInstr["add"]) > 0 {
			t.Error("ADD used: COPY is the rule (DL3020)")
		}
	}

	t.Run("config-check stage", func(t *testing.T) {
		checkConfigStage(t, global, check)
	})
	t.Run("final stage", func(t *testing.T) {
		checkFinalStage(t, check, final)
	})

	if cmd := final.byInstr["cmd"]; len(cmd) != 1 || !cmd[0].Attributes["json"] {
		t.Error("want one CMD in JSON form (DL3025)")
	}
	if users := final.byInstr["user"]; len(users) == 0 {
		t.Error("no USER: the image would run as root (DL3002)")
	} else if last := args(users[len(users)-1])[0]; last != rt.User {
		t.Errorf("last USER %q, want the runtime's non-root %q", last, rt.User)
	}
	if expose := final.byInstr["expose"]; len(expose) != 1 || args(expose[0])[0] != fmt.Sprint(rt.ContainerPort) {
		t.Errorf("want EXPOSE %d", rt.ContainerPort)
	}
	if stop := final.byInstr["stopsignal"]; len(stop) != 1 || args(stop[0])[0] != rt.StopSignal {
		t.Errorf("want STOPSIGNAL %s", rt.StopSignal)
	}

	// HEALTHCHECK equal to the container's.
	hc := final.byInstr["healthcheck"]
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

// checkConfigStage: on $BUILDPLATFORM (so a cross-platform build runs nginx natively), named,
// app/nginx.conf and https.conf copied where the image has them, and nginx -t run on them.
func checkConfigStage(t *testing.T, global []*parser.Node, check *stage) {
	if check.name == "" {
		t.Fatal("the config-check stage has no AS name for the image to copy from")
	}
	if p, _ := flag(check.from, "platform"); p != "$"+site.BuildPlatformArg && p != "${"+site.BuildPlatformArg+"}" {
		t.Errorf("config-check stage FROM --platform=%q, want ${%s}: the check must run natively", p, site.BuildPlatformArg)
	}
	// The classic builder expands in FROM only args declared before the first FROM; engine
	// 20.10's BuildKit blanks its own BUILDPLATFORM when that declaration has no default.
	declared := false
	for _, n := range global {
		if strings.EqualFold(n.Value, "ARG") && n.Next != nil {
			if name, value, _ := strings.Cut(n.Next.Value, "="); name == site.BuildPlatformArg {
				declared = true
				if value != "${"+site.BuildPlatformArg+"}" && value != "$"+site.BuildPlatformArg {
					t.Errorf("ARG %s: want the default ${%[1]s}, which keeps BuildKit's value", n.Next.Value)
				}
			}
		}
	}
	if !declared {
		t.Errorf("no ARG %s before the first FROM: the classic builder would not expand it", site.BuildPlatformArg)
	}
	copied := false
	for _, c := range check.byInstr["copy"] {
		if _, from := flag(c, "from"); !from && slices.Equal(args(c), []string{"nginx.conf", "https.conf", "/etc/nginx/"}) {
			copied = true
		}
	}
	if !copied {
		t.Error("the config-check stage does not COPY nginx.conf https.conf /etc/nginx/")
	}
	runs := check.byInstr["run"]
	if len(runs) != 1 {
		t.Fatalf("config-check stage: want one RUN (DL3059), got %d", len(runs))
	}
	run := runs[0]
	cmd := args(run)
	if !run.Attributes["json"] || len(cmd) < 2 || cmd[0] != "nginx" || !slices.Contains(cmd, "-t") {
		t.Errorf("config-check RUN %q: want nginx -t in JSON form (no shell, no pipe: DL4006)", cmd)
	}
	if i := slices.Index(cmd, "-c"); i >= 0 && (i+1 >= len(cmd) || cmd[i+1] != "/etc/nginx/nginx.conf") {
		t.Errorf("config-check RUN %q checks another file than /etc/nginx/nginx.conf", cmd)
	}
	if slices.Index(check.instructions, run) < slices.IndexFunc(check.instructions, func(n *parser.Node) bool { return strings.EqualFold(n.Value, "COPY") }) {
		t.Error("config-check stage runs nginx -t before it copies the config")
	}
}

// checkFinalStage: the target platform (no --platform), no RUN (no emulation for another
// platform), and the config copied from the check stage only.
func checkFinalStage(t *testing.T, check, final *stage) {
	if p, ok := flag(final.from, "platform"); ok {
		t.Errorf("final stage FROM --platform=%s: it must follow the build's target platform", p)
	}
	if runs := final.byInstr["run"]; len(runs) > 0 {
		t.Errorf("final stage has %d RUN: a cross-platform build would need emulation", len(runs))
	}
	fromCheck := 0
	for _, c := range final.byInstr["copy"] {
		from, hasFrom := flag(c, "from")
		a := args(c)
		dest := a[len(a)-1]
		switch {
		case hasFrom && from != check.name:
			// DL3022, DL3023: --from names an earlier stage, not this one.
			t.Errorf("COPY --from=%s: want the config-check stage %q", from, check.name)
		case hasFrom && slices.Equal(a, []string{"/etc/nginx/nginx.conf", "/etc/nginx/https.conf", "/etc/nginx/"}):
			fromCheck++
		case !hasFrom && (strings.HasPrefix(dest, "/etc/nginx/") || slices.Contains(a[:len(a)-1], "nginx.conf") || slices.Contains(a[:len(a)-1], "https.conf")):
			t.Errorf("final stage COPY %q: the nginx config must come from the config-check stage", a)
		}
	}
	if fromCheck != 1 {
		t.Errorf("final stage: want one COPY --from=%s /etc/nginx/nginx.conf /etc/nginx/https.conf /etc/nginx/, got %d", check.name, fromCheck)
	}
}
