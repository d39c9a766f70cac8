// Command partner is the end-to-end suite's stand-in for a partner
// organisation that a store sends data to through its egress gateway
// (test/e2e, docs/e2e.md). It answers HTTPS with mutual TLS: a client that
// presents no certificate signed by the client CA gets no connection. It
// records what it received and tells the suite on a plain-HTTP port of its
// own, by count and category path only:
//
//	partner -listen :8443,:8444 -admin :8081 -cert tls.crt -key tls.key -client-ca ca.crt
//
//	GET /received (admin port)   a JSON array, one item per request received:
//	    {"listener": ":8443", "method": "POST", "path": "/referrals",
//	     "client": "<client certificate's common name>", "categories": ["contact", "identity"]}
//
// path is the first segment of the request's path only and categories the
// top-level members of a JSON object body (the senders name them after
// data categories); nothing else of a request is kept, so no dossier id and
// no personal data reach the suite. Every request is answered 201 with
// {"received": true}. It holds made-up data only.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Received is what the partner keeps of one request.
type Received struct {
	// Listener is the address the request came in on.
	Listener string `json:"listener"`
	Method   string `json:"method"`
	// Path is the first segment of the request's path, such as /referrals.
	Path string `json:"path"`
	// Client is the common name of the client certificate presented.
	Client string `json:"client"`
	// Categories are the top-level members of a JSON object body, sorted.
	Categories []string `json:"categories"`
}

// recorder keeps the requests received.
type recorder struct {
	mu   sync.Mutex
	seen []Received
}

func (rec *recorder) add(r Received) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.seen = append(rec.seen, r)
}

func (rec *recorder) all() []Received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Received{}, rec.seen...)
}

// partnerHandler records each request received on listener and answers 201.
func partnerHandler(rec *recorder, listener string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := Received{Listener: listener, Method: r.Method, Path: firstSegment(r.URL.Path), Categories: bodyMembers(r.Body)}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			got.Client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		rec.add(got)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"received":true}`+"\n")
	})
}

// adminHandler tells what was received, and answers the probes.
func adminHandler(rec *recorder) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /received", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rec.all())
	})
	return mux
}

// firstSegment is "/" and the first segment of path: /referrals of
// /referrals/D-1001.
func firstSegment(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return "/" + seg
}

// bodyMembers are the sorted top-level member names of a JSON object body;
// empty for any other body.
func bodyMembers(body io.Reader) []string {
	var obj map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&obj); err != nil {
		return []string{}
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// serverTLS requires a client certificate signed by one of clientCAs.
func serverTLS(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
}

func loadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("client CA: no PEM certificate in " + caFile)
	}
	return serverTLS(cert, pool), nil
}

func main() {
	listen := flag.String("listen", ":8443", "comma-separated HTTPS addresses (mutual TLS)")
	admin := flag.String("admin", ":8081", "plain-HTTP address of /received and /healthz")
	certFile := flag.String("cert", "/etc/partner/tls.crt", "server certificate (PEM)")
	keyFile := flag.String("key", "/etc/partner/tls.key", "server key (PEM)")
	caFile := flag.String("client-ca", "/etc/partner/ca.crt", "CA certificates a client certificate must chain to (PEM)")
	flag.Parse()
	cfg, err := loadTLS(*certFile, *keyFile, *caFile)
	if err != nil {
		log.Fatal(err)
	}
	rec := &recorder{}
	errc := make(chan error, 8)
	for _, addr := range strings.Split(*listen, ",") {
		srv := &http.Server{Addr: addr, Handler: partnerHandler(rec, addr), TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- srv.ListenAndServeTLS("", "") }()
	}
	go func() {
		srv := &http.Server{Addr: *admin, Handler: adminHandler(rec), ReadHeaderTimeout: 5 * time.Second}
		errc <- srv.ListenAndServe()
	}()
	log.Printf("Partner listening on %s (mutual TLS), admin on %s", *listen, *admin)
	log.Fatal(<-errc)
}
