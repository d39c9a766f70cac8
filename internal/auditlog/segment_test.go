package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// segmentOptions are testOptions with the smallest preallocated segment.
func segmentOptions(t testing.TB) Options {
	opts := testOptions(t)
	opts.Preallocate = minPreallocate
	opts.CheckpointEvery = 100
	return opts
}

// verifyTail verifies data allowing an unsigned tail, as of a log whose
// writer has not closed it.
func verifyTail(t testing.TB, data []byte) Result {
	t.Helper()
	res, err := VerifyWithOptions(bytes.NewReader(data), VerifyOptions{PublicKeys: []ed25519.PublicKey{publicKey}, AllowUnsignedTail: true})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

// openSegmentLog opens a writer on opts and appends n events; the caller
// closes it.
func openSegmentLog(t *testing.T, opts Options, n int) *Writer {
	t.Helper()
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Append(context.Background(), testEvent(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	return w
}

// crashImage is the file of a writer that is still open, as a crash of the
// node would leave it once every Append so far has returned: a copy in a
// new file, which another writer may open.
func crashImage(t *testing.T, path string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "crashed.log")
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return copyPath, data
}

// TestPreallocatedLog: a preallocated log grows in whole segments ahead of
// its content, ends with zeros while it is open, verifies with every event
// that Append confirmed, and is an ordinary log (no zeros) once closed.
func TestPreallocatedLog(t *testing.T) {
	opts := segmentOptions(t)
	const n = 250 // about 150 KB: three segments of 64 KiB
	w := openSegmentLog(t, opts, n)
	data, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	if len(data)%minPreallocate != 0 || len(data) == end || !allZero(data[end:]) {
		t.Errorf("the open log is %d bytes with content up to %d; want whole segments of %d bytes ending with zeros", len(data), end, minPreallocate)
	}
	if res := verifyTail(t, data); !res.OK || res.Events != n {
		t.Errorf("the open log: %s; want OK with %d events", res, n)
	}
	var read int
	if err := ReadEvents(bytes.NewReader(data), func(*Record) error { read++; return nil }); err != nil || read != n {
		t.Errorf("ReadEvents on the open log: %d events, %v; want %d", read, err, n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(opts.Path)
	if bytes.IndexByte(data, 0) >= 0 || data[len(data)-1] != '\n' {
		t.Error("the closed log still holds zero bytes")
	}
	if res := mustVerify(t, data); !res.OK || res.Events != n {
		t.Errorf("the closed log: %s; want OK with %d events and its final checkpoint", res, n)
	}
}

// TestPreallocatedCommitsKeepTheSize: a commit into the preallocated
// segment writes in place, does not change the file's size, and is synced
// before Append returns.
func TestPreallocatedCommitsKeepTheSize(t *testing.T) {
	opts := segmentOptions(t)
	w := openSegmentLog(t, opts, 1)
	defer func() { _ = w.Close() }()
	cf := &countingFile{logFile: w.file}
	w.file = cf
	before, err := os.Stat(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 6; i++ {
		if err := w.Append(context.Background(), testEvent(i)); err != nil {
			t.Fatal(err)
		}
		if got := cf.syncs.Load(); got != int64(i) {
			t.Fatalf("after %d Appends %d syncs; want one per Append, before it returns", i, got)
		}
	}
	after, err := os.Stat(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || before.Size() != minPreallocate {
		t.Errorf("the file grew from %d to %d bytes; want one segment of %d throughout", before.Size(), after.Size(), minPreallocate)
	}
}

// TestPreallocatedSyncError: a failed sync of a preallocated log fails the
// Append and stops the writer, as without preallocation.
func TestPreallocatedSyncError(t *testing.T) {
	opts := segmentOptions(t)
	w := openSegmentLog(t, opts, 1)
	w.file = &countingFile{logFile: w.file, failSync: syscall.EIO}
	if err := w.Append(context.Background(), testEvent(1)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append: %v, want EIO", err)
	}
	if err := w.Append(context.Background(), testEvent(2)); err == nil {
		t.Error("Append succeeded after the writer failed")
	}
	_ = w.Close() // reports the failure
}

// TestCrashWithZeroTail: the log a crash leaves (content, then zeros)
// verifies up to its last durable event; a new writer, with or without
// preallocation, cuts the zeros off and continues the chain.
func TestCrashWithZeroTail(t *testing.T) {
	for _, prealloc := range []int64{minPreallocate, 0} {
		name := "reopened preallocated"
		if prealloc == 0 {
			name = "reopened appending"
		}
		t.Run(name, func(t *testing.T) {
			opts := segmentOptions(t)
			const n = 120
			w := openSegmentLog(t, opts, n)
			defer func() { _ = w.Close() }()
			path, data := crashImage(t, opts.Path)
			if res := verifyTail(t, data); !res.OK || res.Events != n {
				t.Fatalf("the crashed log: %s; want OK with %d events", res, n)
			}

			reopened := opts
			reopened.Path, reopened.Preallocate = path, prealloc
			writeEvents(t, reopened, n, 30)
			after, _ := os.ReadFile(path)
			if bytes.IndexByte(after, 0) >= 0 {
				t.Error("zero bytes are left inside the continued log")
			}
			if res := mustVerify(t, after); !res.OK || res.Events != n+30 {
				t.Errorf("the continued log: %s; want OK with %d events", res, n+30)
			}
		})
	}
}

// TestCrashWithTornRecord: a crash in the middle of a commit into the
// preallocated segment leaves the last record cut off and zeros after it.
// Verification reports it truncated after every event before it, and a new
// writer refuses the log without changing it.
func TestCrashWithTornRecord(t *testing.T) {
	opts := segmentOptions(t)
	const n = 40
	w := openSegmentLog(t, opts, n)
	defer func() { _ = w.Close() }()
	path, data := crashImage(t, opts.Path)
	end := bytes.LastIndexByte(data, '\n') + 1
	last := bytes.LastIndexByte(data[:end-1], '\n') + 1 // start of the last line
	tests := []struct {
		name   string
		tear   func([]byte) // applied to the last line and what follows it
		reason Reason
	}{
		{"the end of the record not written", func(b []byte) { clear(b[len(b)/3:]) }, ReasonTruncated},
		{"a block inside the record not written", func(b []byte) { clear(b[10:200]) }, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			torn := bytes.Clone(data)
			tc.tear(torn[last:end])
			if err := os.WriteFile(path, torn, 0o600); err != nil {
				t.Fatal(err)
			}
			res := verifyTail(t, torn)
			if res.OK || res.Reason != tc.reason || res.BrokenSeq != n || res.Events != n-1 {
				t.Errorf("got %s (%d events); want %s at seq %d after %d events", res, res.Events, tc.reason, n, n-1)
			}
			opened := opts
			opened.Path = path
			if w2, err := NewWriter(opened); err == nil {
				_ = w2.Close()
				t.Fatal("NewWriter continued a log whose last record is torn")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, torn) {
				t.Error("the refused log was changed")
			}
		})
	}
}

// TestPreallocatedMaxBytes: segments are cut short at MaxBytes, so the file
// never grows past the limit, and the log still ends signed.
func TestPreallocatedMaxBytes(t *testing.T) {
	opts := segmentOptions(t)
	opts.MaxBytes = 100 << 10 // one and a half segments
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	var appended int
	for i := 0; ; i++ {
		err := w.Append(context.Background(), testEvent(i))
		if errors.Is(err, ErrLogFull) {
			break
		}
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		appended++
		fi, err := os.Stat(opts.Path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > opts.MaxBytes {
			t.Fatalf("the file is %d bytes; the limit is %d", fi.Size(), opts.MaxBytes)
		}
	}
	_ = w.Close() // reports ErrLogFull
	data, _ := os.ReadFile(opts.Path)
	if int64(len(data)) > opts.MaxBytes || bytes.IndexByte(data, 0) >= 0 {
		t.Errorf("the closed log is %d bytes (limit %d) or holds zeros", len(data), opts.MaxBytes)
	}
	if res := mustVerify(t, data); !res.OK || res.Events != appended {
		t.Errorf("got %s; want OK with the %d events appended and a final checkpoint", res, appended)
	}
}

// TestPreallocateOption: a segment below 64 KiB is refused, naming the
// option and the rule.
func TestPreallocateOption(t *testing.T) {
	for _, size := range []int64{-1, 4096} {
		opts := testOptions(t)
		opts.Preallocate = size
		if w, err := NewWriter(opts); err == nil {
			_ = w.Close()
			t.Errorf("NewWriter accepted Preallocate %d", size)
		} else if !strings.Contains(err.Error(), "Preallocate") || !strings.Contains(err.Error(), "65536") {
			t.Errorf("error %q does not name Preallocate and its minimum", err)
		}
	}
}

// TestLineReaderZeroTail: zero bytes after the last newline are the end of
// the input; zeros anywhere else are part of a line.
func TestLineReaderZeroTail(t *testing.T) {
	zeros := func(n int) string { return string(make([]byte, n)) }
	type line struct {
		text     string
		complete bool
	}
	tests := []struct {
		name  string
		input string
		want  []line
	}{
		{"no tail", "a\nb\n", []line{{"a", true}, {"b", true}}},
		{"zero tail", "a\nb\n" + zeros(100), []line{{"a", true}, {"b", true}}},
		{"zero tail longer than a line may be", "a\n" + zeros(3<<20), []line{{"a", true}}},
		{"only zeros", zeros(10), nil},
		{"torn last line", "a\nb" + zeros(10), []line{{"a", true}, {"b" + zeros(10), false}}},
		{"zeros before a line", "a\n" + zeros(3) + "b\n", []line{{"a", true}, {zeros(3) + "b", true}}},
		{"zero line with a newline", "a\n" + zeros(3) + "\n", []line{{"a", true}, {zeros(3), true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(tc.input))
			var got []line
			for {
				l, complete, err := lr.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, line{string(l), complete})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines; want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d: %q (complete %v); want %q (complete %v)", i, got[i].text, got[i].complete, tc.want[i].text, tc.want[i].complete)
				}
			}
		})
	}
}
