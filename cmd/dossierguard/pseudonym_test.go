package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestPseudonymCommand: the id from standard input, pseudonymised as the
// proxy does (lower-cased, HMAC-SHA-256 under the key); neither printed.
func TestPseudonymCommand(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	keyFile := filepath.Join(dir, "pseudonym.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, error) {
		cmd := newRootCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(append([]string{"pseudonym"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("D-1001\n", "--store", "wijkteam/wijkteam-dossiers", "--pseudonym-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	want := auditlog.Pseudonymise(key, "d-1001")
	if strings.TrimSpace(out) != want {
		t.Errorf("printed %q, want %q (the proxy's pseudonym of the lower-cased id)", out, want)
	}
	if strings.Contains(out, "D-1001") {
		t.Error("the id is printed")
	}

	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no id", "", []string{"--store", "ns/s", "--pseudonym-key", keyFile}, "no dossier id on standard input"},
		{"no store", "D-1", []string{"--pseudonym-key", keyFile}, "--store must be NAMESPACE/NAME"},
		{"store without namespace", "D-1", []string{"--store", "s", "--pseudonym-key", keyFile}, "--store must be NAMESPACE/NAME"},
		{"short key", "D-1", []string{"--store", "ns/s", "--pseudonym-key", writeShortKey(t, dir)}, "--pseudonym-key: pseudonym key is 8 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(tc.stdin, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if exitCodeOf(err) != exitAuditUsage {
				t.Errorf("exit code %d, want %d", exitCodeOf(err), exitAuditUsage)
			}
		})
	}
}

func writeShortKey(t *testing.T, dir string) string {
	p := filepath.Join(dir, "short.key")
	if err := os.WriteFile(p, []byte("12345678"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
