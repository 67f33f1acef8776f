package testbed

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
		if err := copyPath(filepath.Join(root, name), filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	return nil
}

// copyPath copies the file or folder src to dst, which must not exist.
func copyPath(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return os.CopyFS(dst, os.DirFS(src))
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// ReplaceProject replaces the workspace's project files with the project's at root, as a
// user's checkout moves to new code; the stacks stay.
func (w *Workspace) ReplaceProject(root string) error {
	for _, name := range ProjectFiles {
		dst := filepath.Join(w.Dir, name)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := copyPath(filepath.Join(root, name), dst); err != nil {
			return err
		}
	}
	return nil
}
