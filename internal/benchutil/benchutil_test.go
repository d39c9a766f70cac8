package benchutil

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name string
		d    []time.Duration
		p    int
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of an odd count, unsorted", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of an even count is the lower", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(func() []int {
			v := make([]int, 100)
			for i := range v {
				v[i] = 100 - i
			}
			return v
		}()...), 99, 99 * time.Millisecond},
		{"p100 is the largest", ms(1, 9, 5), 100, 9 * time.Millisecond},
		{"p0 is the smallest", ms(4, 2, 8), 0, 2 * time.Millisecond},
	} {
		if got := Percentile(tc.d, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%d) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
	d := ms(3, 1, 2)
	Percentile(d, 50)
	if d[0] != 3*time.Millisecond {
		t.Error("Percentile sorted its argument")
	}
}

func TestMicros(t *testing.T) {
	if got := Micros(1500 * time.Nanosecond); got != 1.5 {
		t.Errorf("Micros(1.5 µs) = %v", got)
	}
}

func TestClosedLoopCountsAndStopsOnError(t *testing.T) {
	n, d := Throughput(t, 4, 50*time.Millisecond, func() error { time.Sleep(time.Millisecond); return nil })
	if n < 4 || d < 50*time.Millisecond {
		t.Errorf("Throughput: %d calls in %v; want at least one per client over the phase", n, d)
	}
	var calls atomic.Int64
	ft := &fakeTB{TB: t}
	lat, _ := ClosedLoop(ft, 4, 10*time.Second, func() (time.Duration, error) {
		if calls.Add(1) > 3 {
			return 0, errors.New("refused")
		}
		return time.Millisecond, nil
	})
	if ft.errors.Load() != 1 || len(lat) != 3 {
		t.Errorf("after a failing call: %d errors reported, %d latencies; want 1 and 3", ft.errors.Load(), len(lat))
	}
}

func TestFsyncLatencies(t *testing.T) {
	if lat := FsyncLatencies(t, t.TempDir(), 5); len(lat) != 5 || lat[0] <= 0 {
		t.Errorf("FsyncLatencies: %v", lat)
	}
}

// TestSyncLatencies: every mode times n syncs, and the probe file ends up
// with the n lines written (the preallocated modes in place, not after the
// space reserved).
func TestSyncLatencies(t *testing.T) {
	for _, mode := range []SyncMode{AppendFsync, AppendFdatasync, ZeroedFdatasync, FallocatedFdatasync} {
		dir := t.TempDir()
		lat := SyncLatencies(t, dir, 5, mode)
		if len(lat) != 5 || slices.Min(lat) <= 0 {
			t.Errorf("%s: %v; want five positive durations", mode, lat)
		}
		fi, err := os.Stat(filepath.Join(dir, "sync-probe-"+mode.String()))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 5*700 {
			t.Errorf("%s: the probe file is %d bytes; want 3500", mode, fi.Size())
		}
	}
}

// TestSyncProbe: a probe sampled one line at a time writes each line after
// the last (in place in a zeroed file, which keeps its size) and times a
// sync per line, also past the lines it was made room for (4 lines in room
// for 3).
func TestSyncProbe(t *testing.T) {
	for _, mode := range []SyncMode{AppendFsync, ZeroedFdatasync} {
		dir := t.TempDir()
		p := NewSyncProbe(t, dir, 3, mode)
		for i := range 4 {
			if d := p.Sample(t); d <= 0 {
				t.Errorf("%s: sample %d took %s; want a positive duration", mode, i, d)
			}
		}
		p.Close()
		data, err := os.ReadFile(filepath.Join(dir, "sync-probe-"+mode.String()))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != 4*700 || slices.Contains(data, 0) {
			t.Errorf("%s: the probe file is %d bytes (zeros: %v); want 2800 bytes of lines", mode, len(data), slices.Contains(data, 0))
		}
	}
}

// fakeTB counts Error calls instead of failing the test.
type fakeTB struct {
	testing.TB
	errors atomic.Int64
}

func (f *fakeTB) Error(...any) { f.errors.Add(1) }
