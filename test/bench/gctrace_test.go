package bench

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"sync"
)

// gcTrace reads the manager's stderr with GODEBUG=gctrace=1, one line per
// collection ("gc 12 @3.4s 2%: … 40->41->20 MB, 42 MB goal, …"), and keeps
// the highest live heap (the third figure: what the collection found
// live) and the highest goal (the heap size at which the next collection
// starts: with GOGC 100 twice the live heap, unless the memory limit holds
// it lower). Every other line goes on to out. Unlike a scrape of the
// manager's metrics, this costs the manager nothing it would not do
// anyway.
type gcTrace struct {
	out io.Writer

	mu         sync.Mutex
	partial    []byte
	live, goal int64 // MB
}

var gcLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

func (g *gcTrace) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.partial = append(g.partial, p...)
	for {
		i := bytes.IndexByte(g.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := g.partial[:i+1]
		if m := gcLine.FindSubmatch(line); m != nil {
			live, _ := strconv.ParseInt(string(m[3]), 10, 64)
			goal, _ := strconv.ParseInt(string(m[4]), 10, 64)
			g.live, g.goal = max(g.live, live), max(g.goal, goal)
		} else if _, err := g.out.Write(line); err != nil {
			return len(p), err
		}
		g.partial = g.partial[i+1:]
	}
}

// peaks are the highest live heap and goal seen, in MB.
func (g *gcTrace) peaks() (live, goal int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.live, g.goal
}
