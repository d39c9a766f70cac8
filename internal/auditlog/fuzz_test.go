package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"slices"
	"testing"
)

// FuzzVerify feeds the verifier valid logs, tampered logs and whatever the
// fuzzer makes of them. It must never panic or fail to read, its verdict
// must be consistent, and a log the writer wrote must verify.
//
//	go test -run '^$' -fuzz FuzzVerify -fuzztime 60s ./internal/auditlog/
func FuzzVerify(f *testing.F) {
	opts := testOptions(f)
	opts.CheckpointEvery = 2
	writeEvents(f, opts, 0, 5) // 1 2 c3 4 5 c6 7 c8
	small := readFile(f, opts.Path)
	sample := join(sampleLog(f))
	valid := [][]byte{small, sample}

	lines := splitLines(small)
	seeds := [][]byte{
		small, sample, nil, []byte("\n"), []byte("{}\n"), []byte("not json"),
		[]byte(`{"v":1,"type":"event","seq":1,"prev":"` + Genesis + `","hash":"` + Genesis + `"}` + "\n"),
		[]byte(`{"seq":18446744073709551615,"hash":"` + Genesis + `"}` + "\n"),
		[]byte(`{"seq":-1,"prev":7,"type":[],"hash":"` + Genesis + `"}` + "\n"),
		join(slices.Delete(clone(lines), 1, 2)),                     // deleted
		join(slices.Insert(clone(lines), 1, bytes.Clone(lines[0]))), // inserted
		append(join(lines[:4]), lines[4][:30]...),                   // cut mid-line
		join(lines[:len(lines)-1]),                                  // no final checkpoint
		func() []byte { // reordered
			l := clone(lines)
			l[0], l[1] = l[1], l[0]
			return join(l)
		}(),
		func() []byte { // rewritten without the key
			l := clone(lines)
			l[3] = rehash(bytes.Replace(l[3], []byte("coach"), []byte("COACH"), 1))
			rechain(l, 4)
			return join(l)
		}(),
		bytes.ReplaceAll(small, []byte(`"seq":`), []byte(`"seq": `)),
	}
	for _, s := range seeds {
		f.Add(s)
	}

	lenient := VerifyOptions{PublicKeys: []ed25519.PublicKey{publicKey}, AllowUnsignedTail: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(bytes.NewReader(data), publicKey)
		if err != nil {
			t.Fatalf("Verify returned an error on in-memory input: %v", err)
		}
		checkResult(t, res, false)
		lres, err := VerifyWithOptions(bytes.NewReader(data), lenient)
		if err != nil {
			t.Fatalf("VerifyWithOptions returned an error on in-memory input: %v", err)
		}
		checkResult(t, lres, true)
		if res.OK && (!lres.OK || lres.Events != res.Events || lres.LastCheckpointSeq != res.LastCheckpointSeq) {
			t.Errorf("strict verdict %s but lenient verdict %s", res, lres)
		}
		for _, v := range valid {
			if bytes.Equal(data, v) && !res.OK {
				t.Errorf("a log written by the writer does not verify: %s", res)
			}
		}
	})
}

// checkResult checks that a verdict is consistent with itself.
func checkResult(t *testing.T, res Result, lenient bool) {
	t.Helper()
	if res.Events+res.Checkpoints != int(res.LastSeq) {
		t.Errorf("%d events and %d checkpoints verified, but the last seq verified is %d", res.Events, res.Checkpoints, res.LastSeq)
	}
	if res.LastCheckpointSeq > res.LastSeq || res.Unsigned > res.Events {
		t.Errorf("inconsistent counts: %+v", res)
	}
	if res.OK {
		if res.Reason != "" || res.BrokenSeq != 0 || res.Detail != "" {
			t.Errorf("OK verdict with a break: %+v", res)
		}
		if !lenient && (res.LastSeq != res.LastCheckpointSeq || res.Unsigned != 0 || res.LastSeq == 0) {
			t.Errorf("strict OK verdict for a log that does not end with a checkpoint: %+v", res)
		}
		return
	}
	if !slices.Contains(Reasons, res.Reason) || res.Detail == "" {
		t.Errorf("broken verdict without a known reason and detail: %+v", res)
	}
	if res.BrokenSeq != res.LastSeq && res.BrokenSeq != res.LastSeq+1 {
		t.Errorf("broken at seq %d, but the last seq verified is %d", res.BrokenSeq, res.LastSeq)
	}
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
