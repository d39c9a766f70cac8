package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// auditFixture is a closed audit log and the files the command reads.
type auditFixture struct {
	dir, log, pub, otherPub, priv string
	lines                         [][]byte
}

// newAuditFixture writes a log of three events (seq 1-3, checkpoint 4) and
// the PEM keys.
func newAuditFixture(t *testing.T) auditFixture {
	t.Helper()
	dir := t.TempDir()
	fx := auditFixture{
		dir: dir, log: filepath.Join(dir, "audit.log"),
		pub: filepath.Join(dir, "key.pub"), otherPub: filepath.Join(dir, "other.pub"), priv: filepath.Join(dir, "key.pem"),
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	writePEM := func(path string, encode func() ([]byte, error)) {
		data, err := encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePEM(fx.pub, func() ([]byte, error) { return auditlog.EncodePublicKeyPEM(priv.Public().(ed25519.PublicKey)) })
	writePEM(fx.otherPub, func() ([]byte, error) { return auditlog.EncodePublicKeyPEM(other.Public().(ed25519.PublicKey)) })
	writePEM(fx.priv, func() ([]byte, error) { return auditlog.EncodePrivateKeyPEM(priv) })

	w, err := auditlog.NewWriter(auditlog.Options{Path: fx.log, SigningKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := w.Append(context.Background(), auditlog.Event{
			Time:        time.Date(2026, 9, 1, 8, 30, i, 0, time.UTC),
			TraceID:     fmt.Sprintf("%032x", i+1),
			OperationID: fmt.Sprintf("%016x", i+1),
			DataSubject: auditlog.Pseudonymise(bytes.Repeat([]byte{7}, 32), "123456782"),
			Actor:       "coach-0042",
			Roles:       []string{"wijkcoach"},
			Action:      auditlog.ActionRead,
			Categories:  []string{"identity"},
			Outcome:     auditlog.OutcomeAllowed,
			Method:      "GET",
			Route:       "read-dossier",
			Status:      200,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fx.log)
	if err != nil {
		t.Fatal(err)
	}
	fx.lines = bytes.SplitAfter(data, []byte{'\n'})
	fx.lines = fx.lines[:len(fx.lines)-1]
	return fx
}

// write writes lines to a new file in the fixture's directory.
func (fx auditFixture) write(t *testing.T, name string, lines ...[]byte) string {
	t.Helper()
	path := filepath.Join(fx.dir, name)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runAudit runs the dossierguard root command with the audit command
// registered, as main does, and returns stdout, stderr and the exit code
// main would end with.
func runAudit(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCommand()
	if c, _, err := root.Find([]string{"audit"}); err != nil || c == root {
		root.AddCommand(newAuditCommand())
	}
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(bytes.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(&errOut, "Error:", err) // as main prints it
	}
	return out.String(), errOut.String(), exitCodeOf(err)
}

// TestAuditVerifyCommand checks the verdict line and the exit code of
// `dossierguard audit verify` for intact, tampered and unreadable logs and
// for usage errors.
func TestAuditVerifyCommand(t *testing.T) {
	fx := newAuditFixture(t)
	l := fx.lines // 1 2 3 events, 4 checkpoint
	whole := bytes.Join(l, nil)
	deleted := fx.write(t, "deleted.log", l[0], l[2], l[3])
	live := fx.write(t, "live.log", l[0], l[1], l[2])
	cut := fx.write(t, "cut.log", l[0], l[1][:20])
	// A preallocated log whose writer crashed: zeros after its last line,
	// or after a record it was writing.
	zeros := make([]byte, 64<<10)
	liveZeroTail := fx.write(t, "live-zero-tail.log", l[0], l[1], l[2], zeros)
	tornZeroTail := fx.write(t, "torn-zero-tail.log", l[0], l[1], l[2][:40], zeros)
	notPEM := fx.write(t, "not.pem", []byte("hello\n"))

	tests := []struct {
		name   string
		stdin  []byte
		args   []string
		code   int
		stdout string // exact, or a prefix when it ends with "..."
		stderr string // a fragment
	}{
		{"intact file", nil, []string{"audit", "verify", fx.log, "--public-key", fx.pub},
			0, "OK: 3 events, last checkpoint at seq 4\n", ""},
		{"intact log on stdin", whole, []string{"audit", "verify", "-", "--public-key", fx.pub},
			0, "OK: 3 events, last checkpoint at seq 4\n", ""},
		{"stdin without -", whole, []string{"audit", "verify", "--public-key", fx.pub},
			0, "OK: 3 events, last checkpoint at seq 4\n", ""},
		{"deleted event", nil, []string{"audit", "verify", deleted, "--public-key", fx.pub},
			1, "BROKEN at seq 2: deleted: seq 2 is missing: seq 3 follows seq 1\n", "is broken at seq 2 (deleted)"},
		{"tampered log on stdin", append(bytes.Clone(l[1]), l[0]...), []string{"audit", "verify", "-", "--public-key", fx.pub},
			1, "BROKEN at seq 1: reordered: seq 2 comes before seq 1: lines were moved\n", ""},
		{"cut mid-line", nil, []string{"audit", "verify", cut, "--public-key", fx.pub},
			1, "BROKEN at seq 2: truncated: the log ends in the middle of a line...", ""},
		{"live log", nil, []string{"audit", "verify", live, "--public-key", fx.pub},
			1, "BROKEN at seq 4: truncated: the log ends after seq 3 without a final checkpoint...", ""},
		{"live log allowed", nil, []string{"audit", "verify", live, "--public-key", fx.pub, "--allow-unsigned-tail", "--checkpoint-interval", "0"},
			0, "OK: 3 events, no checkpoint yet (3 events not yet signed)\n", ""},
		{"live preallocated log with its zero tail", nil, []string{"audit", "verify", liveZeroTail, "--public-key", fx.pub, "--allow-unsigned-tail", "--checkpoint-interval", "0"},
			0, "OK: 3 events, no checkpoint yet (3 events not yet signed)\n", ""},
		{"closed log with zeros after it", nil, []string{"audit", "verify", fx.write(t, "closed-zero-tail.log", whole, zeros), "--public-key", fx.pub},
			0, "OK: 3 events, last checkpoint at seq 4\n", ""},
		{"torn record before the zero tail", nil, []string{"audit", "verify", tornZeroTail, "--public-key", fx.pub, "--allow-unsigned-tail", "--checkpoint-interval", "0"},
			1, "BROKEN at seq 3: truncated: the log ends in the middle of a line...", ""},
		{"stale unsigned tail", nil, []string{"audit", "verify", live, "--public-key", fx.pub, "--allow-unsigned-tail"},
			1, "BROKEN at seq 4: unsigned: the log ends with 3 events after its last checkpoint...", "(unsigned)"},
		{"more events than the writer leaves unsigned", nil, []string{"audit", "verify", fx.log, "--public-key", fx.pub, "--checkpoint-every", "2"},
			1, "BROKEN at seq 3: unsigned: 3 events follow the last checkpoint without a new one, but the writer signs every 2...", ""},
		{"another key", nil, []string{"audit", "verify", fx.log, "--public-key", fx.otherPub},
			1, "BROKEN at seq 4: bad-signature: checkpoint was signed with key ...", ""},
		{"both keys of a rotation", nil, []string{"audit", "verify", fx.log, "--public-key", fx.otherPub, "--public-key", fx.pub},
			0, "OK: 3 events, last checkpoint at seq 4\n", ""},
		{"no public key", nil, []string{"audit", "verify", fx.log},
			2, "", "--public-key is required"},
		{"missing log", nil, []string{"audit", "verify", filepath.Join(fx.dir, "nope.log"), "--public-key", fx.pub},
			2, "", "no such file or directory"},
		{"log is a directory", nil, []string{"audit", "verify", fx.dir, "--public-key", fx.pub},
			2, "", "is a directory"},
		{"missing key file", nil, []string{"audit", "verify", fx.log, "--public-key", filepath.Join(fx.dir, "nope.pub")},
			2, "", "read public key"},
		{"key file not PEM", nil, []string{"audit", "verify", fx.log, "--public-key", notPEM},
			2, "", `no PEM "PUBLIC KEY" block found`},
		{"private key as public key", nil, []string{"audit", "verify", fx.log, "--public-key", fx.priv},
			2, "", "this is a private key; give the public key"},
		{"two files", nil, []string{"audit", "verify", fx.log, fx.log, "--public-key", fx.pub},
			2, "", "takes one FILE"},
		{"unknown flag", nil, []string{"audit", "verify", fx.log, "--public-key", fx.pub, "--frobnicate"},
			2, "", "unknown flag: --frobnicate"},
		{"no subcommand", nil, []string{"audit"},
			2, "", "needs a subcommand"},
		{"unknown subcommand", nil, []string{"audit", "check", fx.log},
			2, "", `unknown command "check"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runAudit(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stdout %q, stderr %q)", code, tc.code, stdout, stderr)
			}
			if prefix, ok := strings.CutSuffix(tc.stdout, "..."); ok {
				if !strings.HasPrefix(stdout, prefix) || strings.Count(stdout, "\n") != 1 {
					t.Errorf("stdout %q, want one line starting %q", stdout, prefix)
				}
			} else if stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout, tc.stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
			}
		})
	}
}

// TestAuditCommandShape: the constructor main registers gives `audit` with
// the subcommand `verify` and its flags.
func TestAuditCommandShape(t *testing.T) {
	cmd := newAuditCommand()
	if cmd.Name() != "audit" {
		t.Fatalf("command %q, want audit", cmd.Name())
	}
	var verify *cobra.Command
	for _, c := range cmd.Commands() {
		if c.Name() == "verify" {
			verify = c
		}
	}
	if verify == nil {
		t.Fatal("no verify subcommand")
	}
	for _, flag := range []string{"public-key", "allow-unsigned-tail"} {
		if verify.Flags().Lookup(flag) == nil {
			t.Errorf("verify has no --%s flag", flag)
		}
	}
	if !strings.Contains(verify.Long, "Exit codes: 0") {
		t.Error("verify --help does not document the exit codes")
	}
}

// TestExitCodeOf: nil is 0, coded errors keep their code, others are 1.
func TestExitCodeOf(t *testing.T) {
	if exitCodeOf(nil) != 0 || exitCodeOf(fmt.Errorf("x")) != 1 ||
		exitCodeOf(fmt.Errorf("wrapped: %w", auditUsageError("y"))) != 2 {
		t.Error("exitCodeOf does not map nil to 0, plain errors to 1 and usage errors to 2")
	}
}
