package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/example/custom-nginx/internal/testbed"
)

// confInImage is where the image has app/nginx.conf, and where nginx -t names it.
const confInImage = "/etc/nginx/nginx.conf"

// breakConfig is one way to break app/nginx.conf: what nginx -t then says, and on which line
// of the broken file.
type breakConfig struct {
	name string
	// edit returns the broken config and the line nginx reports.
	edit func(t *testing.T, conf string) (string, int)
	want string
}

// lineOf is the 1-based line of the first line of conf that is exactly line (trimmed).
func lineOf(t *testing.T, conf, line string) int {
	t.Helper()
	for i, l := range strings.Split(conf, "\n") {
		if strings.TrimSpace(l) == line {
			return i + 1
		}
	}
	t.Fatalf("app/nginx.conf no longer has the line %q", line)
	return 0
}

var brokenConfigs = []breakConfig{
	{
		name: "unknown directive",
		edit: func(t *testing.T, conf string) (string, int) {
			at := lineOf(t, conf, "server_tokens off;")
			lines := strings.Split(conf, "\n")
			lines = append(lines[:at], append([]string{"    foo bar;"}, lines[at:]...)...)
			return strings.Join(lines, "\n"), at + 1
		},
		want: `unknown directive "foo"`,
	},
	{
		// The directive runs on into the next line, where nginx meets the "}".
		name: "missing semicolon",
		edit: func(t *testing.T, conf string) (string, int) {
			at := lineOf(t, conf, `return 200 "ok\n";`)
			lines := strings.Split(conf, "\n")
			lines[at-1] = strings.TrimSuffix(lines[at-1], ";")
			if strings.TrimSpace(lines[at]) != "}" {
				t.Fatalf("app/nginx.conf: line %d after the /healthz return is %q, not }", at+1, lines[at])
			}
			return strings.Join(lines, "\n"), at + 1
		},
		want: `unexpected "}"`,
	},
	{
		// nginx reports the end of the file: the line after the last newline.
		name: "missing closing brace",
		edit: func(t *testing.T, conf string) (string, int) {
			trimmed := strings.TrimRight(conf, "\n")
			if !strings.HasSuffix(trimmed, "}") {
				t.Fatal("app/nginx.conf does not end with }")
			}
			broken := strings.TrimSuffix(trimmed, "}")
			return broken, strings.Count(broken, "\n") + 1
		},
		want: `unexpected end of file, expecting "}"`,
	},
}

// TestConfigCheckRefusesBrokenConfig builds app/ with a broken nginx.conf, as `pulumi up`
// would: the build must fail at the config-check stage, say what nginx said with the file and
// line, tag nothing, and leave no image behind.
func TestConfigCheckRefusesBrokenConfig(t *testing.T) {
	onMachineEngine.join(t)
	e, base, good := configCheckSetup(t)
	ctx := context.Background()
	for _, bc := range brokenConfigs {
		t.Run(bc.name, func(t *testing.T) {
			broken, line := bc.edit(t, string(good))
			dir := appCopy(t, broken)
			tag := "custom-nginx-e2e/broken:" + randomHex(t, 6)
			t.Cleanup(func() { e.RemoveImage(tag) })
			began := time.Now()
			_, err := e.BuildApp(ctx, testbed.AppBuild{Dir: dir, Tag: tag, Base: base})
			if err == nil {
				t.Fatalf("the build accepted a config with a %s", bc.name)
			}
			msg := err.Error()
			where := fmt.Sprintf("in %s:%d", confInImage, line)
			if !strings.Contains(msg, bc.want+" "+where) {
				t.Errorf("the build failed, but its error does not say %q %s:\n%s", bc.want, where, msg)
			}
			if _, err := e.ImageInspect(ctx, tag); err == nil {
				t.Errorf("a failed build tagged %s", tag)
			}
			t.Logf("refused in %s: %s", time.Since(began).Round(time.Millisecond), nginxSaid(msg))
		})
	}
}

// TestConfigCheckPassesGoodConfig builds app/ and a copy whose config differs (a comment):
// each image holds exactly the config it was built from, and nothing else of the check.
func TestConfigCheckPassesGoodConfig(t *testing.T) {
	onMachineEngine.join(t)
	e, base, good := configCheckSetup(t)
	ctx := context.Background()
	changed := string(good) + "# " + randomHex(t, 8) + "\n"
	for _, b := range []struct {
		name, dir string
		conf      []byte
	}{
		{"app/", appDir, good},
		{"a changed config", appCopy(t, changed), []byte(changed)},
	} {
		t.Run(b.name, func(t *testing.T) {
			tag := "custom-nginx-e2e/good:" + randomHex(t, 6)
			t.Cleanup(func() { e.RemoveImage(tag) })
			began := time.Now()
			if _, err := e.BuildApp(ctx, testbed.AppBuild{Dir: b.dir, Tag: tag, Base: base}); err != nil {
				t.Fatal(err)
			}
			t.Logf("built in %s", time.Since(began).Round(time.Millisecond))
			files := filesInImage(t, e, tag, confInImage, "/tmp")
			if got := files[strings.TrimPrefix(confInImage, "/")]; !bytes.Equal(got, b.conf) {
				t.Errorf("the image's %s (%d bytes) is not the config it was built from (%d bytes)", confInImage, len(got), len(b.conf))
			}
			// What nginx -t made in the check stage (temp dirs, a pid file) stays there.
			for name := range files {
				if strings.HasPrefix(name, "tmp/") && name != "tmp/" {
					t.Errorf("the image has /%s: the config check leaked into it", name)
				}
			}
			history, err := e.ImageHistory(ctx, tag)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range history {
				if strings.Contains(h.CreatedBy, "nginx -t") {
					t.Errorf("the image's history has the check's step %q", h.CreatedBy)
				}
			}
		})
	}
}

// appCopy copies app/ into a temp dir with conf as its nginx.conf, and returns the dir.
// configCheckSetup is what the config-check tests build with: the engine, the base image
// and app/'s nginx.conf; when the test ends it checks that no build image is left.
func configCheckSetup(t *testing.T) (e *testbed.Engine, base string, good []byte) {
	t.Helper()
	e = testbed.RequireEngine(t)
	base, err := testbed.BaseImage(appDir)
	if err != nil {
		t.Fatal(err)
	}
	good, err = os.ReadFile(filepath.Join(appDir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	t.Cleanup(func() { checkNoBuildImagesLeft(t, e, base, start) })
	return e, base, good
}

func appCopy(t *testing.T, conf string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	if err := os.CopyFS(dir, os.DirFS(appDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nginxSaid is the lines of a build error that nginx printed.
func nginxSaid(msg string) string {
	var said []string
	for _, line := range strings.Split(msg, "\n") {
		if strings.Contains(line, "[emerg]") || strings.Contains(line, "test failed") {
			said = append(said, strings.TrimSpace(line))
		}
	}
	return strings.Join(said, " / ")
}

// filesInImage reads paths (files or directories) from a container of ref that never
// starts: the regular files' content by their path without the leading slash, and every
// other entry with no content.
func filesInImage(t *testing.T, e *testbed.Engine, ref string, paths ...string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	created, err := e.ContainerCreate(ctx, &container.Config{Image: ref}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer e.RemoveContainer(created.ID)
	files := map[string][]byte{}
	for _, p := range paths {
		rc, _, err := e.CopyFromContainer(ctx, created.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(p)
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				t.Fatal(err)
			}
			name := strings.TrimPrefix(filepath.Join(dir, hdr.Name), "/")
			content, err := io.ReadAll(tr)
			if err != nil {
				rc.Close()
				t.Fatal(err)
			}
			if hdr.Typeflag != tar.TypeReg {
				name += "/"
			}
			files[name] = content
		}
		rc.Close()
	}
	return files
}

// checkNoBuildImagesLeft fails the test if an untagged image without children that a build
// since start made on base is still there: what a classic build leaves of its config-check
// stage, or of a build that failed, unless it is removed. (Leaves only: removing them removes
// their untagged parents.) One seen is looked at again 3 s later, since a build running beside
// the tests has such a leaf for a moment.
func checkNoBuildImagesLeft(t *testing.T, e *testbed.Engine, base string, start time.Time) {
	t.Helper()
	left, err := buildLeftovers(e, base, start)
	if err == nil && len(left) > 0 {
		time.Sleep(3 * time.Second)
		left, err = buildLeftovers(e, base, start)
	}
	if err != nil {
		t.Error(err)
	}
	for _, id := range left {
		t.Errorf("left behind: untagged image %.19s, built on %s during the test", id, base)
	}
}

func buildLeftovers(e *testbed.Engine, base string, start time.Time) ([]string, error) {
	ctx := context.Background()
	baseInspect, err := e.ImageInspect(ctx, base)
	if err != nil {
		return nil, err
	}
	images, err := e.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	hasChild := map[string]bool{}
	parent := map[string]string{}
	tagged := map[string]bool{}
	for _, img := range images {
		hasChild[img.ParentID] = true
		parent[img.ID] = img.ParentID
		// The engine lists an untagged image with the tag <none>:<none>.
		tagged[img.ID] = slices.ContainsFunc(img.RepoTags, func(tag string) bool { return tag != "<none>:<none>" })
	}
	var left []string
	for _, img := range images {
		if tagged[img.ID] || hasChild[img.ID] || time.Unix(img.Created, 0).Before(start.Truncate(time.Second)) {
			continue
		}
		// Built on base: every ancestor up to it untagged.
		for p := parent[img.ID]; p != ""; p = parent[p] {
			if p == baseInspect.ID {
				left = append(left, img.ID)
				break
			}
			if tagged[p] {
				break
			}
		}
	}
	return left, nil
}
