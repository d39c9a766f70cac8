package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestVerifyTamper changes a closed sample log in each way the verifier must
// detect and checks the reason and the sequence number it reports. The
// sample's layout is in sampleLog: events 1-5, 7-11, 13-14 and checkpoints
// 6, 12 and 15. Line index i holds seq i+1.
func TestVerifyTamper(t *testing.T) {
	orig := sampleLog(t)
	if res := mustVerify(t, join(orig)); !res.OK {
		t.Fatalf("the untouched sample does not verify: %s", res)
	}
	edit := func(line []byte) []byte {
		if !bytes.Contains(line, []byte("coach-0042")) {
			t.Fatalf("line has no actor to edit: %s", line)
		}
		return bytes.Replace(line, []byte("coach-0042"), []byte("coach-0666"), 1)
	}

	tests := []struct {
		name   string
		tamper func(l [][]byte) []byte
		reason Reason
		seq    uint64
		detail string // a fragment of Result.Detail
	}{
		{"edit an event", func(l [][]byte) []byte {
			l[7] = edit(l[7])
			return join(l)
		}, ReasonEdited, 8, "does not match its hash"},
		{"edit the seq of an event", func(l [][]byte) []byte {
			l[7] = bytes.Replace(l[7], []byte(`"seq":8,`), []byte(`"seq":80,`), 1)
			return join(l)
		}, ReasonEdited, 8, "its seq now reads 80"},
		{"edit an event and recompute its hash", func(l [][]byte) []byte {
			l[7] = rehash(edit(l[7]))
			return join(l)
		}, ReasonEdited, 8, "seq 8 was changed and its hash recomputed"},
		{"edit the first event and recompute its hash", func(l [][]byte) []byte {
			l[0] = rehash(edit(l[0]))
			return join(l)
		}, ReasonEdited, 1, "seq 1 was changed"},
		{"edit a checkpoint's time", func(l [][]byte) []byte {
			l[5] = bytes.Replace(l[5], []byte(`"time":"2026-09-01T09`), []byte(`"time":"2026-09-01T10`), 1)
			return join(l)
		}, ReasonEdited, 6, "does not match its hash"},
		{"delete an event", func(l [][]byte) []byte {
			return join(slices.Delete(l, 7, 8))
		}, ReasonDeleted, 8, "seq 8 is missing"},
		{"delete two events", func(l [][]byte) []byte {
			return join(slices.Delete(l, 7, 9))
		}, ReasonDeleted, 8, "seq 8 to 9 are missing (2 lines)"},
		{"delete the first events", func(l [][]byte) []byte {
			return join(l[2:])
		}, ReasonDeleted, 1, "seq 1 to 2 are missing"},
		{"delete a checkpoint", func(l [][]byte) []byte {
			return join(slices.Delete(l, 5, 6))
		}, ReasonDeleted, 6, "seq 6 is missing"},
		{"delete the last event", func(l [][]byte) []byte {
			return join(slices.Delete(l, 13, 14))
		}, ReasonDeleted, 14, "seq 14 is missing"},
		{"insert a forged event that follows the chain", func(l [][]byte) []byte {
			forged := rehash(edit(bytes.Clone(l[7]))) // seq 8, prev = hash of 7
			return join(slices.Insert(l, 7, forged))
		}, ReasonInserted, 8, "two different lines carry seq 8"},
		{"insert a forged event with a made-up hash", func(l [][]byte) []byte {
			forged := edit(bytes.Clone(l[7]))
			return join(slices.Insert(l, 7, forged))
		}, ReasonInserted, 8, "hash does not match its content sits where seq 8"},
		{"insert a forged event with a recomputed hash but a wrong prev", func(l [][]byte) []byte {
			forged := setPrev(edit(bytes.Clone(l[7])), strings.Repeat("ab", 32))
			return join(slices.Insert(l, 7, forged))
		}, ReasonInserted, 8, "two lines carry seq 8"},
		{"insert a copy of the event before it", func(l [][]byte) []byte {
			return join(slices.Insert(l, 8, bytes.Clone(l[7])))
		}, ReasonInserted, 9, "seq 8 appears twice"},
		{"insert a replay of an old event", func(l [][]byte) []byte {
			return join(slices.Insert(l, 9, bytes.Clone(l[2])))
		}, ReasonInserted, 10, "seq 3 appears again"},
		{"insert a copy of a later event", func(l [][]byte) []byte {
			return join(slices.Insert(l, 7, bytes.Clone(l[9])))
		}, ReasonInserted, 8, "a copy of seq 10"},
		{"insert a line at the end", func(l [][]byte) []byte {
			return join(append(l, rehash(bytes.Clone(l[2]))))
		}, ReasonInserted, 16, "seq 3 appears again"},
		{"swap two events", func(l [][]byte) []byte {
			l[7], l[8] = l[8], l[7]
			return join(l)
		}, ReasonReordered, 8, "seq 9 comes before seq 8"},
		{"move an event later", func(l [][]byte) []byte {
			moved := l[7]
			l = slices.Delete(l, 7, 8)
			return join(slices.Insert(l, 9, moved)) // 7, 9, 10, 8, 11
		}, ReasonReordered, 8, "seq 9 comes before seq 8"},
		{"move an event earlier", func(l [][]byte) []byte {
			moved := l[9]
			l = slices.Delete(l, 9, 10)
			return join(slices.Insert(l, 7, moved)) // 7, 10, 8, 9, 11
		}, ReasonReordered, 8, "seq 10 comes before seq 8"},
		{"cut off mid-line", func(l [][]byte) []byte {
			return append(join(l[:9]), l[9][:40]...)
		}, ReasonTruncated, 10, "ends in the middle of a line"},
		{"remove the final newline", func(l [][]byte) []byte {
			d := join(l)
			return d[:len(d)-1]
		}, ReasonTruncated, 15, "no final newline"},
		{"remove the final checkpoint", func(l [][]byte) []byte {
			return join(l[:14])
		}, ReasonTruncated, 15, "ends after seq 14 without a final checkpoint (the last checkpoint is at seq 12)"},
		{"empty", func([][]byte) []byte { return nil }, ReasonTruncated, 1, "the log is empty"},
		{"edit an event and recompute the rest of the chain", func(l [][]byte) []byte {
			l[7] = edit(l[7])
			rechain(l, 7)
			return join(l)
		}, ReasonBadSignature, 12, "does not match the checkpoint"},
		{"change a checkpoint's signature", func(l [][]byte) []byte {
			i := bytes.Index(l[11], []byte(`"sig":"`)) + len(`"sig":"`)
			if l[11][i] == '0' {
				l[11][i] = '1'
			} else {
				l[11][i] = '0'
			}
			l[11] = rehash(l[11])
			return join(l)
		}, ReasonBadSignature, 12, "does not match the checkpoint"},
		{"forge a checkpoint with another key but the same key id", func(l [][]byte) []byte {
			other := testKey(2)
			msg := checkpointMessage(12, hashOf(l[10]), "2026-09-01T09:00:00.000000000Z", KeyID(publicKey))
			i := bytes.Index(l[11], []byte(`"sig":"`)) + len(`"sig":"`)
			copy(l[11][i:], hex.EncodeToString(ed25519.Sign(other, msg)))
			l[11] = rehash(l[11])
			rechain(l, 12)
			return join(l)
		}, ReasonBadSignature, 12, "does not match the checkpoint"},
		{"replace a line by text", func(l [][]byte) []byte {
			l[7] = []byte("this is not json\n")
			return join(l)
		}, ReasonMalformed, 8, "not valid JSON"},
		{"replace a line by JSON without a hash", func(l [][]byte) []byte {
			l[7] = []byte(`{"v":1,"type":"event","seq":8}` + "\n")
			return join(l)
		}, ReasonMalformed, 8, "does not end with the hash member"},
		{"an empty line", func(l [][]byte) []byte {
			return join(slices.Insert(l, 7, []byte("\n")))
		}, ReasonMalformed, 8, "not valid JSON"},
		{"add an unknown member and recompute the hash", func(l [][]byte) []byte {
			l[7] = rehash(bytes.Replace(l[7], []byte(`"route":`), []byte(`"note":"x","route":`), 1))
			return join(l)
		}, ReasonMalformed, 8, `unknown field "note"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mustVerify(t, tc.tamper(clone(orig)))
			if res.OK || res.Reason != tc.reason || res.BrokenSeq != tc.seq || !strings.Contains(res.Detail, tc.detail) {
				t.Errorf("got %s\nwant BROKEN at seq %d: %s: ...%s...", res, tc.seq, tc.reason, tc.detail)
			}
			if res.LastSeq >= res.BrokenSeq && tc.reason != ReasonEdited && tc.reason != ReasonInserted {
				t.Errorf("LastSeq %d is not before the break at %d", res.LastSeq, res.BrokenSeq)
			}
		})
	}
}

// TestVerifyWrongKey: a log checked with another key breaks at its first
// checkpoint, naming both key ids.
func TestVerifyWrongKey(t *testing.T) {
	other := testKey(9).Public().(ed25519.PublicKey)
	res, err := Verify(bytes.NewReader(join(sampleLog(t))), other)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Reason != ReasonBadSignature || res.BrokenSeq != 6 ||
		!strings.Contains(res.Detail, KeyID(publicKey)) || !strings.Contains(res.Detail, KeyID(other)) {
		t.Errorf("got %s; want bad-signature at seq 6 naming both key ids", res)
	}
	if res.Events != 5 || res.LastSeq != 5 {
		t.Errorf("got %d events up to seq %d before the break; want 5 up to 5", res.Events, res.LastSeq)
	}
}

// TestVerifyKeyRotation: a log whose checkpoints were signed by two keys
// verifies when both are given, and breaks at the first checkpoint of the
// missing key otherwise.
func TestVerifyKeyRotation(t *testing.T) {
	opts := testOptions(t)
	writeEvents(t, opts, 0, 3) // seq 1-3, checkpoint 4
	rotated := opts
	rotated.SigningKey = testKey(3)
	writeEvents(t, rotated, 3, 2) // seq 5-6, checkpoint 7
	data, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	newPub := rotated.SigningKey.Public().(ed25519.PublicKey)
	res, err := VerifyWithOptions(bytes.NewReader(data), VerifyOptions{PublicKeys: []ed25519.PublicKey{publicKey, newPub}})
	if err != nil || !res.OK || res.Events != 5 || res.LastCheckpointSeq != 7 {
		t.Fatalf("with both keys: got %s, %v; want OK: 5 events, last checkpoint at seq 7", res, err)
	}
	if res := mustVerify(t, data); res.OK || res.Reason != ReasonBadSignature || res.BrokenSeq != 7 {
		t.Errorf("with the old key only: got %s; want bad-signature at seq 7", res)
	}
}

// TestVerifyUnsignedTail: a live log (no final checkpoint yet) is OK with
// AllowUnsignedTail and counts its unsigned events.
func TestVerifyUnsignedTail(t *testing.T) {
	lines := sampleLog(t)
	data := join(lines[:14])
	opts := VerifyOptions{PublicKeys: []ed25519.PublicKey{publicKey}, AllowUnsignedTail: true}
	res, err := VerifyWithOptions(bytes.NewReader(data), opts)
	if err != nil || !res.OK || res.Events != 12 || res.LastCheckpointSeq != 12 || res.Unsigned != 2 {
		t.Fatalf("got %+v, %v; want OK with 12 events, last checkpoint 12, 2 unsigned", res, err)
	}
	if got, want := res.String(), "OK: 12 events, last checkpoint at seq 12 (2 events after it not yet signed)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// Breaks are still breaks.
	res, _ = VerifyWithOptions(bytes.NewReader(join(slices.Delete(clone(lines[:14]), 7, 8))), opts)
	if res.OK || res.Reason != ReasonDeleted || res.BrokenSeq != 8 {
		t.Errorf("got %s; want deleted at 8", res)
	}
	// An empty live log is OK.
	res, _ = VerifyWithOptions(bytes.NewReader(nil), opts)
	if !res.OK || res.String() != "OK: 0 events, no checkpoint yet (0 events not yet signed)" {
		t.Errorf("empty live log: got %s", res)
	}
}

// TestVerifyTruncatedAtCheckpoint documents the limit of a single file: cut
// right after a checkpoint, a log verifies, up to that checkpoint. The copy
// sent to the log collector (the mirror) is what shows such a cut.
func TestVerifyTruncatedAtCheckpoint(t *testing.T) {
	res := mustVerify(t, join(sampleLog(t)[:12]))
	if !res.OK || res.Events != 10 || res.LastCheckpointSeq != 12 {
		t.Errorf("got %s; want OK: 10 events, last checkpoint at seq 12", res)
	}
}

// TestVerifyLongLine: a line over the limit is malformed, without holding
// it in memory.
func TestVerifyLongLine(t *testing.T) {
	lines := sampleLog(t)
	long := append([]byte(`{"v":1,"x":"`), bytes.Repeat([]byte("a"), maxLineLen+10)...)
	long = append(long, "\"}\n"...)
	res := mustVerify(t, join(slices.Insert(lines, 3, long)))
	if res.OK || res.Reason != ReasonMalformed || res.BrokenSeq != 4 || !strings.Contains(res.Detail, "longer than") {
		t.Errorf("got %s; want malformed at seq 4 (line too long)", res)
	}
}

// TestVerifyBadKey: keys that are not Ed25519 public keys are an error, not
// a verdict.
func TestVerifyBadKey(t *testing.T) {
	if _, err := Verify(strings.NewReader(""), ed25519.PublicKey("short")); err == nil {
		t.Error("Verify accepted a 5-byte key")
	}
	if _, err := VerifyWithOptions(strings.NewReader(""), VerifyOptions{}); err == nil {
		t.Error("VerifyWithOptions accepted no key")
	}
}

// TestResultString checks the verdict lines the command prints.
func TestResultString(t *testing.T) {
	res := mustVerify(t, join(sampleLog(t)))
	if got, want := res.String(), "OK: 12 events, last checkpoint at seq 15"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	broken := Result{BrokenSeq: 8, Reason: ReasonDeleted, Detail: "seq 8 is missing: seq 9 follows seq 7"}
	if got, want := broken.String(), "BROKEN at seq 8: deleted: seq 8 is missing: seq 9 follows seq 7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
