package checkmode

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"testing"
)

// echo passes when its argument is "pass".
type echo string

func (e echo) Run(context.Context) (string, error) {
	if e != "pass" {
		return "", errors.New("echo failed: " + string(e))
	}
	return "echo passed", nil
}

var mode = Mode[echo]{
	Command: "echo-check",
	Parse: func(args []string) (echo, error) {
		switch {
		case len(args) == 1 && args[0] == "-h":
			return "", flag.ErrHelp
		case len(args) != 1:
			return "", errors.New("want one argument")
		}
		return echo(args[0]), nil
	},
	Usage: func(w io.Writer) { io.WriteString(w, "usage: echo-check WORD\n") },
}

func TestMainExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"pass"}, 0, "echo passed\n", ""},
		{[]string{"fail"}, 1, "", "echo failed: fail\n"},
		{nil, 2, "", "echo-check: want one argument\nusage: echo-check WORD\n"},
		{[]string{"-h"}, 0, "usage: echo-check WORD\n", ""},
	} {
		var stdout, stderr bytes.Buffer
		code := mode.Main(tt.args, &stdout, &stderr)
		if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
