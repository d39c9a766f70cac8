// Command netpol checks NetworkPolicy scenarios: it decides every
// expectation of a scenario file with cyclonus's NetworkPolicy matcher and
// reports the ones that do not hold.
//
//	go run . check [-v] FILE...
//
// Exit status: 0 when every expectation holds, 1 when any does not, 2 when
// a file cannot be loaded or the command is misused.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dossierguard/dossierguard/test/netpol/netpolcheck"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: netpol check [-v] FILE...

Checks NetworkPolicy scenario files (see README.md). Prints each expectation
that does not hold as
  ns/pod -> ns/pod:port/PROTO: expected allowed, got denied (policies: ...)
and exits 1 if there is any; exits 2 if a file cannot be loaded.
`

func run(args []string, stdout, stderr io.Writer) int {
	out, errOut := &printer{w: stdout}, &printer{w: stderr}
	if len(args) == 0 || args[0] != "check" {
		errOut.printf("%s", usage)
		return 2
	}
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { errOut.printf("%s", usage); fs.PrintDefaults() }
	verbose := fs.Bool("v", false, "print every expectation, not only the failing ones")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}

	passed, failed, broken := 0, 0, 0
	for _, path := range fs.Args() {
		p, f, err := checkFile(path, *verbose, out)
		if err != nil {
			errOut.printf("ERROR %v\n", err)
			broken++
			continue
		}
		passed += p
		failed += f
	}
	out.printf("%d passed, %d failed\n", passed, failed)
	switch {
	case broken > 0 || out.err != nil:
		return 2
	case failed > 0:
		return 1
	}
	return 0
}

// checkFile checks one scenario file and prints its result; the error is
// for a file that cannot be loaded or checked.
func checkFile(path string, verbose bool, out *printer) (passed, failed int, err error) {
	s, err := netpolcheck.LoadFile(path)
	if err != nil {
		return 0, 0, err
	}
	results, err := s.Check()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	bad := netpolcheck.Mismatches(results)
	if len(bad) == 0 {
		out.printf("ok   %s (%s, %s)\n", path, count(len(results), "expectation"), count(len(s.NetworkPolicies()), "policy"))
	} else {
		out.printf("FAIL %s (%d of %d expectations do not hold)\n", path, len(bad), len(results))
	}
	for _, r := range results {
		if r.OK() && !verbose {
			continue
		}
		if r.OK() {
			out.printf("  ok: %s\n", r)
			continue
		}
		out.printf("%s\n", r)
		if r.Expectation.Note != "" {
			out.printf("  note: %s\n", r.Expectation.Note)
		}
	}
	return len(results) - len(bad), len(bad), nil
}

// printer writes output and keeps the first write error, so that a report
// that could not be written fails the run.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if noun == "policy" {
		return fmt.Sprintf("%d policies", n)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
