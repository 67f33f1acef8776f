package subcommand

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"
)

// echo passes when its word is "pass"; its one flag must not be empty.
type echo struct{ word, prefix string }

func (e echo) Validate() error {
	if e.prefix == "" {
		return errors.New("prefix is empty")
	}
	return nil
}

func (e echo) Run(context.Context) (string, error) {
	if e.word != "pass" {
		return "", errors.New(e.prefix + " failed: " + e.word)
	}
	return e.prefix + " passed", nil
}

var mode = Mode[echo]{
	Name:     "echo-check",
	Synopsis: "[-prefix P] WORD",
	About:    "passes for the word pass",
	Arg:      "the word",
	Flags: func() (*flag.FlagSet, *echo, func(string)) {
		e := &echo{}
		fs := flag.NewFlagSet("echo-check", flag.ContinueOnError)
		fs.StringVar(&e.prefix, "prefix", "echo", "what the answer starts with")
		return fs, e, func(word string) { e.word = word }
	},
}

const usage = "usage: echo-check [-prefix P] WORD\npasses for the word pass\n  -prefix string\n    \twhat the answer starts with (default \"echo\")\n"

func TestMainExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"pass"}, 0, "echo passed\n", ""},
		{[]string{"-prefix=it", "pass"}, 0, "it passed\n", ""},
		{[]string{"fail"}, 1, "", "echo failed: fail\n"},
		{[]string{"-prefix=", "pass"}, 2, "", "echo-check: prefix is empty\n" + usage},
		{[]string{"pass", "more"}, 2, "", "echo-check: unexpected arguments [\"more\"] after the word\n" + usage},
		{[]string{"-unknown", "pass"}, 2, "", "echo-check: flag provided but not defined: -unknown\n" + usage},
		{[]string{"-h"}, 0, usage, ""},
	} {
		var stdout, stderr bytes.Buffer
		code := mode.Main(tt.args, &stdout, &stderr)
		if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
