// Package checkmode runs one of the program's check modes: the program's own binary, run
// again by a command resource, parses its command line (flags, then one argument, which the
// command provider appends as create), runs the check and exits with a code the provider
// reports.
package checkmode

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Check is a check that says what is wrong with its settings, and runs until it has an
// answer.
type Check interface {
	Validate() error
	Run(ctx context.Context) (string, error)
}

// Mode is one check mode.
type Mode[C Check] struct {
	Command  string // the program's first argument that selects the mode
	Synopsis string // the command line after Command, for the usage: "-sha256 HEX [flags] URL"
	About    string // what the mode does, one line
	Arg      string // what the one argument is, for errors: "the URL"
	// Flags is a flag set bound to a new C, and a function that stores the argument in it.
	Flags func() (*flag.FlagSet, *C, func(arg string))
}

// Parse reads a command line (the arguments after Command) into a valid C. Omitted flags
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
	fmt.Fprintf(w, "usage: %s %s\n%s\n", m.Command, m.Synopsis, m.About)
	fs.PrintDefaults()
}

// Main runs the mode with args, the arguments after Command, and returns the exit code:
// 0 the check passed (message on stdout), 1 it failed (message on stderr), 2 bad usage.
func (m Mode[C]) Main(args []string, stdout, stderr io.Writer) int {
	c, err := m.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		m.Usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", m.Command, err)
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
