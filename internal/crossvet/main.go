// Command crossvet type-checks and vets packages for other systems than the one it runs on,
// from their source. `GOOS=windows go vet` compiles every dependency for Windows first (for
// this program, the Pulumi SDK's 600 packages: minutes of CPU); type-checking them from
// source finds the same Unix-only call in seconds.
//
// Usage: crossvet -targets windows/amd64,darwin/arm64 packages...
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"
)

func main() {
	targets := flag.String("targets", "", "the GOOS/GOARCH pairs to check for, comma-separated (required)")
	flag.Parse()
	if *targets == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: crossvet -targets windows/amd64,darwin/arm64 packages...")
		os.Exit(2)
	}
	problems := 0
	for _, target := range strings.Split(*targets, ",") {
		n, err := vet(os.Stdout, target, flag.Args())
		if err != nil {
			fmt.Fprintf(os.Stderr, "crossvet %s: %v\n", target, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "crossvet %s: %d problems\n", target, n)
		problems += n
	}
	if problems > 0 {
		os.Exit(1)
	}
}

// vet loads patterns and their tests as target (GOOS/GOARCH) builds them, with every
// dependency type-checked from source, and runs go vet's analyzers on them. It writes each
// problem to w (type errors and failed analyzers to stderr) and returns how many there were.
func vet(w io.Writer, target string, patterns []string) (int, error) {
	goos, goarch, ok := strings.Cut(target, "/")
	if !ok || goos == "" || goarch == "" {
		return 0, fmt.Errorf("target %q is not GOOS/GOARCH, e.g. windows/amd64", target)
	}
	cfg := &packages.Config{
		Mode:  packages.LoadAllSyntax,
		Tests: true,
		// A cross build has no C toolchain for the target: cgo is off, as go build has it.
		Env: append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0"),
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return 0, err
	}
	if n := packages.PrintErrors(pkgs); n > 0 {
		return n, nil // the analyzers need packages that type-check
	}
	graph, err := checker.Analyze(suite, pkgs, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, act := range graph.Roots {
		n += len(act.Diagnostics)
		if act.Err != nil { // an analyzer that failed checked nothing: that is a problem too
			fmt.Fprintf(os.Stderr, "%s: %v\n", act, act.Err)
			n++
		}
	}
	return n, graph.PrintText(w, -1)
}
