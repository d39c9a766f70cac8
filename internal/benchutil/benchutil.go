// Package benchutil holds the measuring helpers that the benchmarks of the
// audit proxy and the egress gateway share: fsync latency of the disk under
// the audit log, closed-loop load at a given concurrency, and percentiles.
// Only tests and benchmarks import it.
package benchutil

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FsyncLatencies appends 700 bytes (about one audit line) to a new file in
// dir and times os.File.Sync after each, n times: the fsync latency of the
// audit log's disk, measured in the same run as the figures it explains.
func FsyncLatencies(tb testing.TB, dir string, n int) []time.Duration {
	return SyncLatencies(tb, dir, n, AppendFsync)
}

// SyncMode is how SyncLatencies writes and syncs its 700-byte lines.
type SyncMode int

// The ways of making a line durable that SyncLatencies compares.
const (
	// AppendFsync appends and fsyncs: the file grows with every line, as
	// the audit log without preallocation does.
	AppendFsync SyncMode = iota
	// AppendFdatasync appends and fdatasyncs: the file still grows, and
	// its new size must be made durable too.
	AppendFdatasync
	// ZeroedFdatasync overwrites a file written with zeros and fsynced
	// beforehand, and fdatasyncs: neither the size nor the allocation
	// changes (auditlog.Options.Preallocate).
	ZeroedFdatasync
	// FallocatedFdatasync overwrites space reserved with fallocate(2) and
	// fdatasyncs: the size stays, but the first write to a reserved block
	// changes its allocation.
	FallocatedFdatasync
)

// String names the mode for metrics.
func (m SyncMode) String() string {
	switch m {
	case AppendFdatasync:
		return "append-fdatasync"
	case ZeroedFdatasync:
		return "zeroed-fdatasync"
	case FallocatedFdatasync:
		return "fallocated-fdatasync"
	}
	return "append-fsync"
}

// SyncLatencies writes 700 bytes (about one audit line) after the last to a
// new file in dir and times the sync of mode after each, n times in a row.
func SyncLatencies(tb testing.TB, dir string, n int, mode SyncMode) []time.Duration {
	tb.Helper()
	p := NewSyncProbe(tb, dir, n, mode)
	defer p.Close()
	lat := make([]time.Duration, 0, n)
	for range n {
		lat = append(lat, p.Sample(tb))
	}
	return lat
}

// SyncProbe makes 700-byte lines (about one audit line) durable one at a
// time, the way of its mode, on a file of its own: a benchmark can then time
// single syncs between its requests, at the pace and under the load of the
// log it compares them with, and not only in a burst of syncs in a row
// (SyncLatencies), which a disk may serve faster than syncs spaced out.
type SyncProbe struct {
	f    *os.File
	mode SyncMode
	line []byte
	next int // the line written next
}

// NewSyncProbe creates the probe's file in dir, room for n lines in the
// modes that prepare it (zeros, fallocate); more lines than n still work.
func NewSyncProbe(tb testing.TB, dir string, n int, mode SyncMode) *SyncProbe {
	tb.Helper()
	f, err := os.Create(filepath.Join(dir, "sync-probe-"+mode.String()))
	if err != nil {
		tb.Fatal(err)
	}
	line := make([]byte, 700)
	switch mode {
	case ZeroedFdatasync:
		if _, err := f.Write(make([]byte, n*len(line))); err != nil {
			tb.Fatal(err)
		}
	case FallocatedFdatasync:
		if err := fallocate(f, int64(n*len(line))); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	for i := range line {
		line[i] = 'x'
	}
	return &SyncProbe{f: f, mode: mode, line: line}
}

// Sample writes the next line and times its sync.
func (p *SyncProbe) Sample(tb testing.TB) time.Duration {
	if _, err := p.f.WriteAt(p.line, int64(p.next*len(p.line))); err != nil {
		tb.Fatal(err)
	}
	p.next++
	t0 := time.Now()
	var err error
	if p.mode == AppendFsync {
		err = p.f.Sync()
	} else {
		err = datasync(p.f)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return time.Since(t0)
}

// Close closes the probe's file.
func (p *SyncProbe) Close() { _ = p.f.Close() }

// ClosedLoop runs c clients, each calling call again as soon as it returns,
// until phase has passed, and returns the latency of every completed call
// and the time taken. The first error is reported with tb.Error and stops
// every client.
func ClosedLoop(tb testing.TB, c int, phase time.Duration, call func() (time.Duration, error)) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(phase)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && !failed.Load() {
				d, err := call()
				if err != nil {
					if failed.CompareAndSwap(false, true) {
						tb.Error(err)
					}
					break
				}
				mine = append(mine, d)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
}

// Throughput is ClosedLoop for calls that time nothing: it returns how many
// completed and the time taken.
func Throughput(tb testing.TB, c int, phase time.Duration, call func() error) (int64, time.Duration) {
	lat, d := ClosedLoop(tb, c, phase, func() (time.Duration, error) { return 0, call() })
	return int64(len(lat)), d
}

// Percentile is the p-th percentile of d by the nearest-rank method (the
// smallest value with at least p % of the values at or below it); 0 for no
// values.
func Percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// Micros is d in microseconds, for b.ReportMetric.
func Micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
