package auditlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestMaxBytes: at its size limit the writer refuses the event that would
// pass it (the caller refuses the request), ends the log with a signed
// checkpoint, and stops; every event it accepted is in the file, which
// never grows past the limit and verifies with no unsigned tail.
func TestMaxBytes(t *testing.T) {
	opts := testOptions(t)
	opts.CheckpointEvery = 100
	opts.MaxBytes = 16 << 10
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i := range 1000 {
		err := w.Append(context.Background(), testEvent(i))
		if err == nil {
			accepted++
			continue
		}
		if !errors.Is(err, ErrLogFull) {
			t.Fatalf("event %d: %v, want ErrLogFull", i, err)
		}
		break
	}
	if accepted == 0 || accepted == 1000 {
		t.Fatalf("%d events accepted, want the limit to stop it in between", accepted)
	}
	if err := w.Append(context.Background(), testEvent(2000)); !errors.Is(err, ErrLogFull) {
		t.Errorf("Append after the limit: %v, want ErrLogFull", err)
	}
	if !errors.Is(w.Err(), ErrLogFull) {
		t.Errorf("Err() = %v, want ErrLogFull (the readiness probe reports it)", w.Err())
	}
	if err := w.Close(); !errors.Is(err, ErrLogFull) {
		t.Errorf("Close: %v, want ErrLogFull", err)
	}
	data, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) > opts.MaxBytes {
		t.Errorf("the file has %d bytes, past the limit %d", len(data), opts.MaxBytes)
	}
	res := mustVerify(t, data)
	if !res.OK || res.Events != accepted {
		t.Errorf("verify: %s; want OK with the %d events accepted", res, accepted)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte{'\n'})
	if last := string(lines[len(lines)-1]); !strings.Contains(last, `"type":"`+TypeCheckpoint+`"`) {
		t.Errorf("the log ends with %s, want the final checkpoint", last)
	}

	// A new writer on the full log (the container restarted, the volume
	// stayed) refuses at once and writes nothing more.
	w2, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Append(context.Background(), testEvent(3000)); !errors.Is(err, ErrLogFull) {
		t.Errorf("Append on the full log: %v, want ErrLogFull", err)
	}
	_ = w2.Close()
	after, _ := os.ReadFile(opts.Path)
	if !bytes.Equal(after, data) {
		t.Errorf("the full log changed: %d bytes, was %d", len(after), len(data))
	}
}

func TestMaxBytesOption(t *testing.T) {
	for _, max := range []int64{-1, 100} {
		opts := testOptions(t)
		opts.MaxBytes = max
		if _, err := NewWriter(opts); err == nil || !strings.Contains(err.Error(), "size limit") {
			t.Errorf("MaxBytes %d: %v, want a refusal naming the size limit", max, err)
		}
	}
}
