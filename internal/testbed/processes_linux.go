package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DescendantsOf lists the processes pid started, and theirs, from /proc: a process lists
// its children per thread. A process that started in a group or session of its own is
// still a descendant, which is why tests that end a tree use this and not its group.
func DescendantsOf(pid int) []int {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var all []int
	for _, list := range lists {
		b, _ := os.ReadFile(list) // a thread that ended lists no one
		for _, field := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(field); err == nil {
				all = append(append(all, child), DescendantsOf(child)...)
			}
		}
	}
	return all
}

// CommandLine is pid's command line, its arguments joined by spaces; empty once it is gone.
func CommandLine(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
}
