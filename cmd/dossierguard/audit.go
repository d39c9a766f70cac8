package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// Exit codes of `dossierguard audit verify`.
const (
	exitAuditOK     = 0 // the log verified
	exitAuditBroken = 1 // the log is broken or tampered with
	exitAuditUsage  = 2 // wrong usage, or the log or a key could not be read
)

// auditExitError is an error that carries the exit code the process should
// end with. main turns it into os.Exit(ExitCode()); any other error exits 1.
type auditExitError struct {
	code int
	err  error
}

func (e *auditExitError) Error() string { return e.err.Error() }
func (e *auditExitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for this error.
func (e *auditExitError) ExitCode() int { return e.code }

// auditUsageError is a usage or I/O error: exit code 2.
func auditUsageError(format string, args ...any) error {
	return &auditExitError{code: exitAuditUsage, err: fmt.Errorf(format, args...)}
}

// newAuditCommand returns `dossierguard audit` and its subcommands.
func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with the tamper-evident audit logs of the audit proxy",
		Long: `The audit proxy in front of every dossier store writes one JSON line per data
processing to a hash-chained log with Ed25519-signed checkpoints. The format is
described in docs/audit-log.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a subcommand, or with an unknown one, this is a usage error.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return auditUsageError("unknown command %q for %q; run '%s --help' for usage", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return auditUsageError("%s needs a subcommand; run '%s --help' for usage", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return auditUsageError("%v; run '%s --help' for usage", err, c.CommandPath())
	})
	cmd.AddCommand(newAuditVerifyCommand(), newAuditQueryCommand(), newAuditNotificationsCommand())
	return cmd
}

// auditVerifyOptions are the flags of `dossierguard audit verify`.
type auditVerifyOptions struct {
	publicKeys         []string
	allowUnsignedTail  bool
	checkpointEvery    int
	checkpointInterval time.Duration
	logbook            logbookSource
}

func newAuditVerifyCommand() *cobra.Command {
	var opts auditVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify [FILE|-] --public-key PATH",
		Short: "Verify the hash chain and the checkpoint signatures of an audit log",
		Long: `Verify an audit log written by the audit proxy: every line's hash, the chain of
sequence numbers and hashes, every checkpoint's Ed25519 signature, and that the
log ends with a checkpoint. FILE - (or no FILE, when stdin is not a terminal)
reads the log from stdin.

It prints one line:

  OK: N events, last checkpoint at seq S
  BROKEN at seq N: <reason>: <detail>

where reason is one of edited, deleted, inserted, reordered, truncated,
bad-signature or malformed (see docs/audit-log.md).

Exit codes: 0 the log is intact, 1 the log is broken or tampered with,
2 wrong usage or the log or a key could not be read.`,
		Example: `  dossierguard audit verify /var/log/dossierguard/audit.log --public-key audit-signing.pub.pem
  kubectl logs -n wijkteam deploy/wijkteam-dossier -c audit-proxy | dossierguard audit verify - --public-key key.pub --allow-unsigned-tail`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return auditUsageError("%s takes one FILE (or - for stdin), not %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAuditVerify(cmd, args, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.publicKeys, "public-key", nil,
		"PEM file with the Ed25519 public key (PKIX) that signs the checkpoints; repeat it for the keys of a key rotation (required)")
	f.BoolVar(&opts.allowUnsignedTail, "allow-unsigned-tail", false,
		"accept a log that ends with events after its last checkpoint, such as the live log of a running proxy")
	f.IntVar(&opts.checkpointEvery, "checkpoint-every", auditlog.DefaultCheckpointEvery,
		"the writer's checkpoint interval in events: more events in a row without a checkpoint is a break (0: do not check)")
	f.DurationVar(&opts.checkpointInterval, "checkpoint-interval", auditlog.DefaultCheckpointInterval,
		"the writer's checkpoint interval in time: an unsigned tail whose first event is older than this is a break (0: do not check)")
	opts.logbook.flags(f)
	return cmd
}

func runAuditVerify(cmd *cobra.Command, args []string, opts auditVerifyOptions) error {
	if opts.logbook.enabled {
		return runLogbookVerify(cmd, args, opts)
	}
	if len(opts.publicKeys) == 0 {
		return auditUsageError("--public-key is required: the PEM public key that signs the checkpoints")
	}
	keys, err := readPublicKeys(opts.publicKeys)
	if err != nil {
		return err
	}

	name := "-"
	if len(args) == 1 {
		name = args[0]
	}
	var in io.Reader
	if name == "-" {
		in = cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && len(args) == 0 {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return auditUsageError("give the audit log as FILE, or - to read it from stdin")
			}
		}
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return auditUsageError("open audit log: %w", err)
		}
		defer func() { _ = f.Close() }() // read only: nothing to lose on close
		in = f
	}

	res, err := auditlog.VerifyWithOptions(in, auditlog.VerifyOptions{
		PublicKeys:        keys,
		AllowUnsignedTail: opts.allowUnsignedTail,
		MaxUnsigned:       opts.checkpointEvery,
		MaxUnsignedAge:    opts.checkpointInterval,
	})
	if err != nil {
		return auditUsageError("%s: %w", name, err)
	}
	if _, err := fmt.Fprintln(cmd.OutOrStdout(), res.String()); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	if !res.OK {
		return &auditExitError{code: exitAuditBroken, err: fmt.Errorf("audit log %s is broken at seq %d (%s)", name, res.BrokenSeq, res.Reason)}
	}
	return nil
}

// readPublicKeys reads the PEM public keys of --public-key.
func readPublicKeys(paths []string) ([]ed25519.PublicKey, error) {
	keys := make([]ed25519.PublicKey, 0, len(paths))
	for _, path := range paths {
		pub, err := auditlog.ReadPublicKeyFile(path)
		if err != nil {
			return nil, auditUsageError("%v", err)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// exitCodeOf is the exit code main should end with for an error returned by
// a command: 0 for nil, the code an error carries (auditExitError), else 1.
func exitCodeOf(err error) int {
	if err == nil {
		return exitAuditOK
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return 1
}
