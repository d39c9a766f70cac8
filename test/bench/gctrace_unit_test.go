package bench

import (
	"bytes"
	"testing"
)

func TestGCTraceKeepsThePeaksAndPassesTheRest(t *testing.T) {
	var rest bytes.Buffer
	g := &gcTrace{out: &rest}
	for _, chunk := range []string{
		"gc 1 @0.012s 1%: 0.010+1.1+0.002 ms clock, 0.020+0.3/0.9/0.1+0.004 ms cpu, 4->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n",
		`{"level":"info","msg":"Starting workers"}` + "\ngc 2 @1.5s 3%: 0.01+2+0.01 ms clock, 0.02+0.5/1/0.2+0.02 ms cpu, 80->82->61 MB, 84 MB goal, 1 MB stacks, 0 MB globals, 2 P\n",
		"gc 3 @2.0s 3%: 0.01+2+0.01 ms clock, 0.02+0.5/1/0.2+0.02 ms cpu, 120->121->",
		"40 MB, 122 MB goal, 1 MB stacks, 0 MB globals, 2 P\n",
	} {
		if _, err := g.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if live, goal := g.peaks(); live != 61 || goal != 122 {
		t.Errorf("peaks live %d, goal %d MB; want 61 and 122", live, goal)
	}
	if got := rest.String(); got != `{"level":"info","msg":"Starting workers"}`+"\n" {
		t.Errorf("passed on %q; want only the log line", got)
	}
}
