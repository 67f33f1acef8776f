package testsupport

import (
	"os"
	"path/filepath"
)

// ProjectFiles are what a run of the project needs, by pulumi or by make up's script,
// relative to its root.
var ProjectFiles = []string{"Pulumi.yaml", "go.mod", "go.sum", "main.go", "internal", "app", "scripts"}

// CopyProject copies the Pulumi project at root into dst, so a test or benchmark can edit
// the page and keep stack files of its own without touching the repository.
func CopyProject(root, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, name := range ProjectFiles {
		src := filepath.Join(root, name)
		info, err := os.Stat(src)
		if err != nil {
			return err
		}
		if info.IsDir() {
			err = os.CopyFS(filepath.Join(dst, name), os.DirFS(src))
		} else {
			var b []byte
			if b, err = os.ReadFile(src); err == nil {
				err = os.WriteFile(filepath.Join(dst, name), b, 0o644)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
