package subcommand

import "io"

// mains are the subcommands by the name that selects them.
var mains = map[string]func(args []string, stdout, stderr io.Writer) int{
	PreflightName:    preflightMode.Main,
	PushCheckName:    pushCheckMode.Main,
	SmokeCheckName:   smokeCheckMode.Main,
	RolloutWaitName:  rolloutWaitMode.Main,
	PublishIndexName: publishIndexMode.Main,
}

// Run runs the subcommand that args (this program's arguments) name and returns its exit
// code; ok is false when args name none, and the binary is the Pulumi program.
func Run(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	run, ok := mains[args[0]]
	if !ok {
		return 0, false
	}
	return run(args[1:], stdout, stderr), true
}
