// Command echo is a tiny HTTP server for checking a cluster's network: it
// answers every request with the pod's hostname, the request line and the
// caller's address, as plain text. /healthz answers "ok".
//
//	echo [-listen :8080]          serve
//	echo -get URL [-k]            fetch URL, print the body (the image has no curl)
//	echo -resolve NAME [-dns IP:PORT]
//	                              look NAME up, print its addresses (the image has
//	                              no nslookup); with the pod's /etc/resolv.conf and
//	                              its search domains, or only the server -dns names
//
// The server exits cleanly on SIGTERM or SIGINT; -get exits 1 unless the
// answer is 200, -resolve exits 1 unless the name has an address. Build it static: CGO_ENABLED=0 go build -ldflags "-s -w".
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", envOr("LISTEN", ":8080"), "address to listen on")
	get := flag.String("get", "", "fetch this URL, print the answer and exit")
	insecure := flag.Bool("k", false, "with -get: do not verify the server's certificate")
	timeout := flag.Duration("timeout", 5*time.Second, "with -get and -resolve: time limit")
	resolve := flag.String("resolve", "", "look this name up, print its addresses and exit")
	dnsServer := flag.String("dns", "", "with -resolve: ask only this DNS server (IP:PORT), not /etc/resolv.conf's")
	flag.Parse()
	if *get != "" {
		os.Exit(fetch(*get, *insecure, *timeout))
	}
	if *resolve != "" {
		os.Exit(lookup(*resolve, *dnsServer, *timeout))
	}
	host, _ := os.Hostname()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hostname: %s\n", host)
		fmt.Fprintf(w, "request: %s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
		fmt.Fprintf(w, "host: %s\n", r.Host)
		fmt.Fprintf(w, "remote: %s\n", r.RemoteAddr)
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range r.Header[k] {
				fmt.Fprintf(w, "header: %s: %s\n", k, v)
			}
		}
	})

	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("echo: listening on %s as %s", *listen, host)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// lookup prints the addresses of name, one a line, with Go's own resolver
// (the pod's resolv.conf, search domains and ndots), or asking only server.
func lookup(name, server string, timeout time.Duration) int {
	r := &net.Resolver{PreferGo: true}
	if server != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	for _, a := range addrs {
		fmt.Println(a)
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// fetch is the client mode: GET url, print the status and body.
func fetch(url string, insecure bool, timeout time.Duration) int {
	client := &http.Client{Timeout: timeout}
	if insecure {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test client, opt-in
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Printf("status: %d\n%s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
