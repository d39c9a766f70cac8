// Command keepalive sends two GET requests on one kept-alive HTTP
// connection, the second at a given moment, and prints both status codes and
// whether the second reused the connection:
//
//	first=200 second=403 reused=true
//
// The end-to-end suite uses it to show that an agreement whose window closes
// while a partner keeps its connection open refuses the next request.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "", "URL to GET twice")
	at := flag.Int64("second-at", 0, "Unix time of the second request")
	caFile := flag.String("cacert", "", "PEM bundle to verify an https server with")
	var hs headers
	flag.Var(&hs, "header", "header Name: value, repeatable")
	flag.Parse()
	if *url == "" || *at == 0 {
		fmt.Fprintln(os.Stderr, "usage: keepalive -url URL -second-at UNIX [-cacert PEM] [-header 'Name: value' ...]")
		os.Exit(2)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Hour}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "keepalive: -cacert holds no PEM certificate")
			os.Exit(2)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client := &http.Client{Transport: transport}
	get := func() (int, bool) {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, *url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, h := range hs {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, reused
	}
	first, _ := get()
	time.Sleep(time.Until(time.Unix(*at, 0)))
	second, reused := get()
	fmt.Printf("first=%d second=%d reused=%v\n", first, second, reused)
}
