package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// rssPeaks samples a process's resident memory by kind, from
// /proc/<pid>/status, and keeps the highest of each: anonymous (RssAnon:
// the Go heap, stacks and the runtime's own) and file-backed (RssFile: the
// pages of the executable that were read in). VmHWM, the peak RSS the
// benchmark reports, is at most their sum; the split says how much of it
// the heap is.
type rssPeaks struct {
	anon, file atomic.Int64
	stop, done chan struct{}
}

// sampleRSS samples pid every interval until finish.
func sampleRSS(pid int, interval time.Duration) *rssPeaks {
	p := &rssPeaks{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			p.sample(pid)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *rssPeaks) sample(pid int) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	anon, file := parseRSSKinds(string(data))
	for _, v := range []struct {
		peak *atomic.Int64
		kb   int64
	}{{&p.anon, anon}, {&p.file, file}} {
		if v.kb*1024 > v.peak.Load() {
			v.peak.Store(v.kb * 1024)
		}
	}
}

// finish stops the sampling and returns the peaks, in bytes.
func (p *rssPeaks) finish() (anon, file int64) {
	close(p.stop)
	<-p.done
	return p.anon.Load(), p.file.Load()
}

// parseRSSKinds reads RssAnon and RssFile, in kB, from /proc/<pid>/status.
func parseRSSKinds(status string) (anon, file int64) {
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "RssAnon:":
			anon = kb
		case "RssFile:":
			file = kb
		}
	}
	return anon, file
}
