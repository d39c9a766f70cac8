package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// A port that was just free: nothing listens there.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := free.Addr().String()
	_ = free.Close()
	t.Cleanup(func() { _ = ln.Close() })

	for _, tc := range []struct {
		addr      string
		wantOpen  bool
		wantError string
	}{
		{open, true, ""},
		{closed, false, "connection refused"},
	} {
		r := Dial(context.Background(), tc.addr, time.Second)
		if r.Open != tc.wantOpen || r.Error != tc.wantError || r.Addr != tc.addr || r.Start == 0 {
			t.Errorf("Dial(%s) = %+v, want open=%v error=%q", tc.addr, r, tc.wantOpen, tc.wantError)
		}
	}
}

// TestWatchStopsAfterClosed: a listener that goes away during the watch;
// the watch reports the open attempts, then stops after the failures in a
// row, long before its duration.
func TestWatchStopsAfterClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	closeAt := time.Now().Add(300 * time.Millisecond)
	// closedAt is when Close returned: the timer fires at closeAt or a
	// little later, and an attempt between the two may still connect.
	var closedAt atomic.Int64
	time.AfterFunc(time.Until(closeAt), func() { _ = ln.Close(); closedAt.Store(time.Now().UnixNano()) })

	var out bytes.Buffer
	began := time.Now()
	err = Watch(context.Background(), WatchOptions{Addr: addr, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond,
		Duration: 20 * time.Second, StopAfterClosed: 5}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("the watch took %s; it should stop after 5 failures in a row", took)
	}
	var opened, failed int
	var lastOpen, firstFailAfterClose int64
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r.Open {
			opened++
			lastOpen = max(lastOpen, r.Start)
		} else {
			failed++
			if r.Start >= closeAt.UnixNano() && (firstFailAfterClose == 0 || r.Start < firstFailAfterClose) {
				firstFailAfterClose = r.Start
			}
		}
	}
	if opened == 0 || failed < 5 {
		t.Fatalf("opened %d, failed %d; want some open attempts, then at least 5 failures:\n%s", opened, failed, out.String())
	}
	if closed := closedAt.Load(); closed == 0 || lastOpen > closed {
		t.Errorf("an attempt started %s after the listener closed was open", time.Duration(lastOpen-closed))
	}
}

func TestLookup(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go answerA(pc, "kubernetes.default.svc.cluster.local.", [4]byte{10, 96, 0, 1})

	r := Lookup(context.Background(), pc.LocalAddr().String(), "kubernetes.default.svc.cluster.local", 2*time.Second)
	if !r.Open || len(r.Answers) != 1 || r.Answers[0] != "10.96.0.1" {
		t.Errorf("Lookup = %+v, want one answer 10.96.0.1", r)
	}
	r = Lookup(context.Background(), pc.LocalAddr().String(), "unknown.example.", 2*time.Second)
	if r.Open || r.Error == "" {
		t.Errorf("Lookup of an unknown name = %+v, want a failure", r)
	}
}

// answerA is a DNS server of one A record; other names get NXDOMAIN.
func answerA(pc net.PacketConn, name string, ip [4]byte) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
		known := q.Name.String() == name
		if !known {
			rh.RCode = dnsmessage.RCodeNameError
		}
		b := dnsmessage.NewBuilder(nil, rh)
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if known && q.Type == dnsmessage.TypeA {
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: ip})
		}
		msg, err := b.Finish()
		if err == nil {
			_, _ = pc.WriteTo(msg, from)
		}
	}
}
