package auditlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppendDurable measures durable events per second: concurrent
// Appends on a real file in the test's temporary directory, each returning
// only after its group commit was fsynced. Checkpoints every 1000 events
// (the default) are included. log=append appends and fsyncs; log=segments
// preallocates (DefaultPreallocate) and fdatasyncs, as the proxy does.
//
//	go test -run '^$' -bench BenchmarkAppendDurable -benchtime 5s ./internal/auditlog/
func BenchmarkAppendDurable(b *testing.B) {
	for _, conc := range []int{1, 64} {
		for _, prealloc := range []int64{0, DefaultPreallocate} {
			mode := "append"
			if prealloc > 0 {
				mode = "segments"
			}
			b.Run(fmt.Sprintf("concurrency=%d/log=%s", conc, mode), func(b *testing.B) { benchAppendDurable(b, conc, prealloc) })
		}
	}
}

func benchAppendDurable(b *testing.B, conc int, prealloc int64) {
	w, err := NewWriter(Options{
		Path:        filepath.Join(b.TempDir(), "audit.log"),
		SigningKey:  signingKey,
		Preallocate: prealloc,
	})
	if err != nil {
		b.Fatal(err)
	}
	cf := &countingFile{logFile: w.file}
	w.file = cf
	events := make([]Event, 1024)
	for i := range events {
		events[i] = testEvent(i)
		events[i].Time = time.Time{} // stamped by Append, as in the proxy
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := w.Append(context.Background(), events[i%int64(len(events))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/float64(max(cf.syncs.Load(), 1)), "events/fsync")
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFsync is the floor under the numbers above: one small append and
// fsync on the same file system.
func BenchmarkFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "f"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	line := make([]byte, 600)
	for b.Loop() {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkVerify measures the verifier on a log of 10,000 events.
func BenchmarkVerify(b *testing.B) {
	opts := testOptions(b)
	opts.CheckpointEvery = 1000
	w, err := NewWriter(opts)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if err := w.Append(context.Background(), testEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.Close()
	data, err := os.ReadFile(opts.Path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if res := mustVerify(b, data); !res.OK {
			b.Fatal(res)
		}
	}
	b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
