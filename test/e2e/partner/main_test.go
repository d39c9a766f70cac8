package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/test/e2e/testpki"
)

// partnerServer starts the partner's HTTPS handler with mutual TLS, and
// returns its recorder and the CA that signs both sides.
func partnerServer(t *testing.T) (*httptest.Server, *recorder, *testpki.CA) {
	t.Helper()
	ca, err := testpki.NewCA("e2e partner CA")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Server("partner", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := server.TLS()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(partnerHandler(rec, ":8443"))
	srv.TLS = serverTLS(cert, pool)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, rec, ca
}

func client(t *testing.T, ca *testpki.CA, pair *testpki.Pair) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if pair != nil {
		c, err := pair.TLS()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestPartnerRecordsPathSegmentCategoriesAndClient(t *testing.T) {
	srv, rec, ca := partnerServer(t)
	pair, err := ca.Client("wijkteam-dossiers-egress")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"identity":{"name":"Gezin Voorbeeld (fictief)"},"contact":{"phone":"06-00000000"}}`
	resp, err := client(t, ca, &pair).Post(srv.URL+"/referrals/D-1001?x=1", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201", resp.StatusCode)
	}
	got := rec.all()
	if len(got) != 1 {
		t.Fatalf("recorded %d requests, want 1", len(got))
	}
	want := Received{Listener: ":8443", Method: "POST", Path: "/referrals", Client: "wijkteam-dossiers-egress", Categories: []string{"contact", "identity"}}
	if g, w := mustJSON(t, got[0]), mustJSON(t, want); g != w {
		t.Errorf("recorded %s, want %s", g, w)
	}
	// Nothing of the dossier or its data is kept.
	if s := mustJSON(t, got); strings.Contains(s, "D-1001") || strings.Contains(s, "Voorbeeld") || strings.Contains(s, "06-") {
		t.Errorf("the record holds request data: %s", s)
	}
}

func TestPartnerRefusesAClientWithoutCertificate(t *testing.T) {
	srv, rec, ca := partnerServer(t)
	if _, err := client(t, ca, nil).Post(srv.URL+"/referrals/D-1001", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("a client without a certificate was answered")
	}
	other, err := testpki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Client("somebody")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, ca, &foreign).Post(srv.URL+"/referrals/D-1001", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("a client whose certificate another CA signed was answered")
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("recorded %d requests of refused clients, want 0", n)
	}
}

func TestAdminListsWhatWasReceived(t *testing.T) {
	rec := &recorder{}
	rec.add(Received{Listener: ":8444", Method: "POST", Path: "/referrals", Categories: []string{}})
	w := httptest.NewRecorder()
	adminHandler(rec).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/received", nil))
	var got []Received
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got) != 1 || got[0].Listener != ":8444" {
		t.Fatalf("GET /received = %q (%v), want the one request", w.Body.String(), err)
	}
}

func TestFirstSegmentAndBodyMembers(t *testing.T) {
	for in, want := range map[string]string{"/referrals/D-1": "/referrals", "/": "/", "/a": "/a", "": "/"} {
		if got := firstSegment(in); got != want {
			t.Errorf("firstSegment(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{`{"b":1,"a":{}}`: "a,b", `[1]`: "", `not json`: "", `{}`: ""} {
		if got := strings.Join(bodyMembers(strings.NewReader(in)), ","); got != want {
			t.Errorf("bodyMembers(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
