// Command netprobe sends and answers real packets for the end-to-end suite's
// network cases (test/e2e, docs/e2e.md). It is one static binary, packed into
// the image local/netprobe:dev, and does four things:
//
//	netprobe serve -listen :8080,:5353        answer HTTP on each address (/healthz: ok)
//	netprobe dial -addr HOST:PORT [-timeout 1s]
//	    one TCP connection attempt; prints one JSON result
//	netprobe watch -addr HOST:PORT [-interval 100ms] [-timeout 500ms] [-duration 60s] [-stop-after-closed 10]
//	    a new connection attempt every interval, each printed as a JSON line as
//	    it ends, until the duration is over or that many attempts in a row failed
//	netprobe dns -server IP:53 -name NAME [-timeout 2s]
//	    resolve NAME at that server (UDP); prints one JSON result
//
// A result names when the attempt started (Unix nanoseconds, the node's
// clock), whether it connected, how long it took and why it failed. netprobe
// exits 0 whatever the outcome of an attempt and 2 on a usage error, so a
// caller reads the outcome from the JSON rather than from the exit status.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result is one connection attempt or look-up.
type Result struct {
	// Addr is the address dialled, or the name looked up.
	Addr string `json:"addr"`
	// Start is when the attempt began, in Unix nanoseconds.
	Start int64 `json:"start"`
	// Open is true when the connection was established (or the name resolved).
	Open bool `json:"open"`
	// Millis is how long the attempt took.
	Millis float64 `json:"ms"`
	// Error says why it failed: a timeout when packets are dropped, a refusal
	// when they are rejected or nothing listens.
	Error string `json:"error,omitempty"`
	// Answers are the addresses a look-up returned.
	Answers []string `json:"answers,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "dial":
		err = dialCmd(os.Args[2:], os.Stdout)
	case "watch":
		err = watchCmd(os.Args[2:], os.Stdout)
	case "dns":
		err = dnsCmd(os.Args[2:], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netprobe:", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: netprobe serve|dial|watch|dns [flags] (netprobe CMD -h)")
	os.Exit(2)
}

// serve answers HTTP on every address until SIGTERM or SIGINT.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", ":8080", "comma-separated addresses to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		host, _ := os.Hostname()
		_, _ = fmt.Fprintf(w, "netprobe %s on %s, from %s\n", host, r.Host, r.RemoteAddr)
	})
	var servers []*http.Server
	errs := make(chan error, 8)
	for _, addr := range strings.Split(*listen, ",") {
		ln, err := net.Listen("tcp", strings.TrimSpace(addr))
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { errs <- srv.Serve(ln) }()
		fmt.Fprintln(os.Stderr, "netprobe: listening on", ln.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdown)
	}
	return nil
}

// Dial makes one TCP connection attempt and closes the connection.
func Dial(ctx context.Context, addr string, timeout time.Duration) Result {
	start := time.Now()
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	r := Result{Addr: addr, Start: start.UnixNano(), Millis: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		r.Error = describe(err)
		return r
	}
	_ = conn.Close()
	r.Open = true
	return r
}

// describe names the failure without the dialler's wrapping.
func describe(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	}
	return err.Error()
}

func dialCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	addr := fs.String("addr", "", "HOST:PORT to connect to")
	timeout := fs.Duration("timeout", time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("dial: -addr is required")
	}
	return json.NewEncoder(out).Encode(Dial(context.Background(), *addr, *timeout))
}

// WatchOptions bound a watch.
type WatchOptions struct {
	Addr            string
	Interval        time.Duration
	Timeout         time.Duration
	Duration        time.Duration
	StopAfterClosed int
}

// Watch starts a connection attempt every interval, each in its own
// goroutine, and writes each result as one JSON line when it ends. It stops
// starting attempts when the duration is over or when StopAfterClosed
// attempts in a row (by start time) have failed, and returns once the
// attempts in flight have ended.
func Watch(ctx context.Context, o WatchOptions, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		outcome = map[int]bool{} // attempt number -> open
		next    int              // the first attempt whose outcome is not yet counted
		closed  int              // failures in a row up to next
		enc     = json.NewEncoder(out)
		encErr  error
	)
	done := make(chan struct{})
	var once sync.Once
	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
	for n := 0; ; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			r := Dial(context.Background(), o.Addr, o.Timeout)
			mu.Lock()
			defer mu.Unlock()
			if err := enc.Encode(r); err != nil && encErr == nil {
				encErr = err
			}
			outcome[n] = r.Open
			for open, ok := outcome[next]; ok; open, ok = outcome[next] {
				if open {
					closed = 0
				} else {
					closed++
				}
				delete(outcome, next)
				next++
			}
			if o.StopAfterClosed > 0 && closed >= o.StopAfterClosed {
				once.Do(func() { close(done) })
			}
		}(n)
		select {
		case <-ctx.Done():
			wg.Wait()
			return encErr
		case <-done:
			wg.Wait()
			return encErr
		case <-ticker.C:
		}
	}
}

func watchCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	o := WatchOptions{}
	fs.StringVar(&o.Addr, "addr", "", "HOST:PORT to connect to")
	fs.DurationVar(&o.Interval, "interval", 100*time.Millisecond, "start an attempt this often")
	fs.DurationVar(&o.Timeout, "timeout", 500*time.Millisecond, "give up on an attempt after this long")
	fs.DurationVar(&o.Duration, "duration", time.Minute, "stop starting attempts after this long")
	fs.IntVar(&o.StopAfterClosed, "stop-after-closed", 10, "stop once this many attempts in a row failed (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Addr == "" || o.Interval <= 0 || o.Timeout <= 0 || o.Duration <= 0 {
		return errors.New("watch: -addr is required and -interval, -timeout and -duration must be positive")
	}
	return Watch(context.Background(), o, out)
}

// Lookup resolves name at one DNS server over UDP.
func Lookup(ctx context.Context, server, name string, timeout time.Duration) Result {
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, "udp", server)
	}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	addrs, err := resolver.LookupHost(ctx, name)
	r := Result{Addr: name + "@" + server, Start: start.UnixNano(), Millis: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		r.Error = describe(err)
		return r
	}
	r.Open, r.Answers = true, addrs
	return r
}

func dnsCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	server := fs.String("server", "", "IP:PORT of the DNS server")
	name := fs.String("name", "", "name to resolve")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || *name == "" {
		return errors.New("dns: -server and -name are required")
	}
	return json.NewEncoder(out).Encode(Lookup(context.Background(), *server, *name, *timeout))
}
