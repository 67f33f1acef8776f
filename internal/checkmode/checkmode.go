// Package checkmode runs one of the program's check modes: the program's own binary, run
// again by a command resource, parses its command line, runs the check and exits with a
// code the command provider reports.
package checkmode

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Check is a parsed check that runs until it has an answer.
type Check interface {
	Run(ctx context.Context) (string, error)
}

// Mode is one check mode: its name (the program's first argument), how it reads the rest
// of the command line, and its usage text.
type Mode[C Check] struct {
	Command string
	Parse   func(args []string) (C, error)
	Usage   func(w io.Writer)
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
