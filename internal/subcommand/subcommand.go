// Package subcommand is what the stack runs this program's own binary for, from command
// resources: the preflight, the push check, the smoke check, the rollout wait and the index
// publishing. The binary parses its command line (flags, then one argument, which the
// command provider appends as create), does the job and exits with a code the provider
// reports. It needs no shell, curl or sha256sum, so it runs the same on Linux, macOS and
// Windows.
package subcommand

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Job is one subcommand's settings: it says what is wrong with them, and runs until it has
// an answer.
type Job interface {
	Validate() error
	Run(ctx context.Context) (string, error)
}

// Mode is one subcommand's command line.
type Mode[C Job] struct {
	Name     string // the program's first argument that selects the subcommand
	Synopsis string // the command line after Name, for the usage: "-sha256 HEX [flags] URL"
	About    string // what the subcommand does, one line
	Arg      string // what the one argument is, for errors: "the URL"
	// Flags is a flag set bound to a new C, and a function that stores the argument in it.
	Flags func() (*flag.FlagSet, *C, func(arg string))
}

// Parse reads a command line (the arguments after Name) into a valid C. Omitted flags
// keep their defaults.
func (m Mode[C]) Parse(args []string) (C, error) {
	var zero C
	fs, c, setArg := m.Flags()
	fs.SetOutput(io.Discard) // Main reports the error
	if err := fs.Parse(args); err != nil {
		return zero, err
	}
	if fs.NArg() > 1 {
		return zero, fmt.Errorf("unexpected arguments %q after %s", fs.Args()[1:], m.Arg)
	}
	setArg(fs.Arg(0))
	if err := (*c).Validate(); err != nil {
		return zero, err
	}
	return *c, nil
}

// Usage writes the mode's usage and its flags to w.
func (m Mode[C]) Usage(w io.Writer) {
	fs, _, _ := m.Flags()
	fs.SetOutput(w)
	fmt.Fprintf(w, "usage: %s %s\n%s\n", m.Name, m.Synopsis, m.About)
	fs.PrintDefaults()
}

// Main runs the mode with args, the arguments after Name, and returns the exit code:
// 0 the job succeeded (message on stdout), 1 it failed (message on stderr), 2 bad usage.
func (m Mode[C]) Main(args []string, stdout, stderr io.Writer) int {
	c, err := m.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		m.Usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", m.Name, err)
		m.Usage(stderr)
		return 2
	}
	msg, err := c.Run(context.Background())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}
