package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// testKey returns a fixed signing key; seed varies it.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

var (
	signingKey = testKey(1)
	publicKey  = signingKey.Public().(ed25519.PublicKey)
	pseudoKey  = bytes.Repeat([]byte{7}, 32)
)

// testEvent returns a valid event; i makes its trace and operation id unique.
func testEvent(i int) Event {
	ev := Event{
		Time:                 time.Date(2026, 9, 1, 8, 30, 0, i, time.UTC),
		Duration:             1500 * time.Microsecond,
		TraceID:              fmt.Sprintf("%032x", i+1),
		OperationID:          fmt.Sprintf("%016x", i+1),
		ProcessingActivityID: "https://register.voorbeeldstad.nl/verwerkingen/wijkteam-ondersteuning",
		DataSubject:          Pseudonymise(pseudoKey, fmt.Sprintf("client-%d", i%7)),
		Actor:                "coach-0042",
		Roles:                []string{"wijkcoach"},
		Action:               ActionRead,
		Categories:           []string{"identity", "contact", "request"},
		Outcome:              OutcomeAllowed,
		Method:               "GET",
		Route:                "read-dossier",
		Status:               200,
	}
	if i%5 == 4 {
		ev.Outcome, ev.Status = OutcomeDenied, 403
	}
	return ev
}

// testOptions returns writer options for a new log in a temporary directory.
func testOptions(t testing.TB) Options {
	return Options{
		Path:               filepath.Join(t.TempDir(), "audit.log"),
		SigningKey:         signingKey,
		CheckpointEvery:    5,
		CheckpointInterval: -1,
		Now:                func() time.Time { return time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC) },
	}
}

// writeEvents appends events first..first+n-1 with a new writer on opts and
// closes it.
func writeEvents(t testing.TB, opts Options, first, n int) {
	t.Helper()
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for i := first; i < first+n; i++ {
		if err := w.Append(context.Background(), testEvent(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// sampleLog writes 12 events with a checkpoint every 5 events and returns
// its lines (with newlines). The layout by seq:
//
//	1-5 events, 6 checkpoint, 7-11 events, 12 checkpoint,
//	13-14 events, 15 final checkpoint.
func sampleLog(t testing.TB) [][]byte {
	t.Helper()
	opts := testOptions(t)
	writeEvents(t, opts, 0, 12)
	data, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	return splitLines(data)
}

// splitLines splits a log into its complete lines, which keep their
// newline.
func splitLines(data []byte) [][]byte {
	return bytes.SplitAfter(data, []byte{'\n'})[:bytes.Count(data, []byte{'\n'})]
}

// join concatenates lines.
func join(lines [][]byte) []byte { return bytes.Join(lines, nil) }

// clone copies lines so that a test can change them.
func clone(lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = bytes.Clone(l)
	}
	return out
}

// hashOf returns the hash a line claims.
func hashOf(line []byte) string {
	l := bytes.TrimSuffix(line, []byte{'\n'})
	return string(l[len(l)-66 : len(l)-2])
}

// rehash recomputes the hash of a line (with newline) after it was changed,
// as an attacker would.
func rehash(line []byte) []byte {
	l := bytes.TrimSuffix(line, []byte{'\n'})
	canon := append(bytes.Clone(l[:len(l)-hashSuffixLen]), '}')
	sum := sha256.Sum256(canon)
	out := append(canon[:len(canon)-1], hashMember...)
	out = append(out, hex.EncodeToString(sum[:])...)
	return append(out, "\"}\n"...)
}

// setPrev replaces the prev of a line and recomputes its hash.
func setPrev(line []byte, prev string) []byte {
	i := bytes.Index(line, []byte(`"prev":"`)) + len(`"prev":"`)
	out := bytes.Clone(line)
	copy(out[i:i+64], prev)
	return rehash(out)
}

// rechain recomputes prev and hash of every line from index from on, as an
// attacker without the signing key would after changing a line.
func rechain(lines [][]byte, from int) {
	for i := from; i < len(lines); i++ {
		prev := Genesis
		if i > 0 {
			prev = hashOf(lines[i-1])
		}
		lines[i] = setPrev(lines[i], prev)
	}
}

// mustVerify verifies data with the test key and fails on an error.
func mustVerify(t testing.TB, data []byte) Result {
	t.Helper()
	res, err := Verify(bytes.NewReader(data), publicKey)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

// countingFile counts the writes and fsyncs of the writer's file, and can
// make them fail.
type countingFile struct {
	logFile
	writes, syncs atomic.Int64
	failWrite     error // after writing half of the buffer
	failSync      error
}

func (c *countingFile) Write(p []byte) (int, error) {
	c.writes.Add(1)
	if c.failWrite != nil {
		n, _ := c.logFile.Write(p[:len(p)/2])
		return n, c.failWrite
	}
	return c.logFile.Write(p)
}

func (c *countingFile) Sync() error {
	c.syncs.Add(1)
	if c.failSync != nil {
		return c.failSync
	}
	return c.logFile.Sync()
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("mirror pipe closed") }
