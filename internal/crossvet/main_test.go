package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// module writes a Go module of one package with the file main.go holding body, and makes it
// the test's working directory.
func module(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/m\n\ngo 1.26\n",
		"main.go": "package main\n\n" + body,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

func TestUnixOnlyCallFailsForWindowsOnly(t *testing.T) {
	module(t, "import \"syscall\"\n\nfunc main() { _ = syscall.Kill(1, syscall.SIGTERM) }\n")
	for target, want := range map[string]int{"linux/amd64": 0, "darwin/arm64": 0, "windows/amd64": 1} {
		var out bytes.Buffer
		n, err := vet(&out, target, []string{"./..."})
		if err != nil || n != want {
			t.Errorf("%s: %d problems, %v; want %d (%s)", target, n, err, want, out.String())
		}
	}
}

func TestVetDiagnosticsAreReported(t *testing.T) {
	module(t, "import \"fmt\"\n\nfunc main() { fmt.Printf(\"%d\\n\", \"not a number\") }\n")
	var out bytes.Buffer
	n, err := vet(&out, "windows/amd64", []string{"./..."})
	if err != nil || n != 1 || !strings.Contains(out.String(), "fmt.Printf format %d has arg") {
		t.Errorf("%d problems, %v, output %q; want printf's one", n, err, out.String())
	}
}

func TestTargetMustBeOSSlashArch(t *testing.T) {
	for _, target := range []string{"windows", "/amd64", "windows/"} {
		if _, err := vet(&bytes.Buffer{}, target, []string{"./..."}); err == nil || !strings.Contains(err.Error(), "GOOS/GOARCH") {
			t.Errorf("target %q: %v, want an error naming GOOS/GOARCH", target, err)
		}
	}
}
