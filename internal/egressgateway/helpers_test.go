package egressgateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

var testPseudonymKey = []byte("0123456789abcdef0123456789abcdef")

// testCA is a certificate authority that issues certificates for tests.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate (PEM) and key (PEM) signed by the CA: a
// server certificate for 127.0.0.1, or a client certificate.
func (ca *testCA) issue(t testing.TB, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// received is what a test partner got.
type received struct {
	method, path, query string
	header              http.Header
	body                string
	clientCN            string
}

// testPartner is a partner's https server that requires a client
// certificate of clientCA and records what arrives.
type testPartner struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	// redirect, when set, is where the partner redirects every request to.
	redirect string
}

func newTestPartner(t testing.TB, serverCA, clientCA *testCA) *testPartner {
	t.Helper()
	p := &testPartner{}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header.Clone(), body: string(body)}
		if len(r.TLS.PeerCertificates) > 0 {
			rec.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		p.mu.Lock()
		p.got = append(p.got, rec)
		redirect := p.redirect
		p.mu.Unlock()
		if redirect != "" {
			http.Redirect(w, r, redirect, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	certPEM, keyPEM := serverCA.issue(t, "verwijsindex.test", true)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p.srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.pool()}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testPartner) received() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.got...)
}

// writeTLSDir writes an agreement's TLS files as the gateway reads them.
func writeTLSDir(t testing.TB, dir, agreement string, caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	d := filepath.Join(dir, agreement)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{accesspolicy.EgressCAFile: caPEM, accesspolicy.EgressClientCertFile: certPEM, accesspolicy.EgressClientKeyFile: keyPEM} {
		if b == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// testAgreement is the referral-index agreement of the tests: identity and
// contact under a legal obligation, with routes within and outside it.
func testAgreement(endpoint string) accesspolicy.EgressAgreement {
	return accesspolicy.EgressAgreement{
		Agreement: accesspolicy.Agreement{
			Name: "verwijsindex", Partner: "Verwijsindex Voorbeeldregio", PartnerType: v1alpha1.PartnerReferralIndex,
			Direction: v1alpha1.DirectionEgress, Categories: []v1alpha1.DataCategory{"identity", "contact"},
			Purpose: "Signaal afgeven", LegalBasis: v1alpha1.BasisLegalObligation, LegalReference: "Jeugdwet art. 7.1.1.1",
			Activities: []string{"verwijsindex"},
		},
		Endpoint:          endpoint,
		ClientCertificate: true,
		Routes: []accesspolicy.Route{
			{Name: "signal", Method: "POST", Path: "/signalen/{dossier}", Categories: []v1alpha1.DataCategory{"identity", "contact"}, Action: v1alpha1.ActionExport, Activities: []string{"verwijsindex"}},
			{Name: "health-note", Method: "POST", Path: "/signalen/{dossier}/notities", Categories: []v1alpha1.DataCategory{"identity", "health"}, Action: v1alpha1.ActionExport},
			{Name: "survey", Method: "POST", Path: "/enquete/{dossier}", Categories: []v1alpha1.DataCategory{"contact"}, Action: v1alpha1.ActionExport, Activities: []string{"tevredenheidsonderzoek"}},
			{Name: "list", Method: "GET", Path: "/signalen", Categories: []v1alpha1.DataCategory{"identity"}, Action: v1alpha1.ActionExport},
		},
	}
}

func testDocument(agreements ...accesspolicy.EgressAgreement) accesspolicy.EgressDocument {
	return accesspolicy.EgressDocument{Version: accesspolicy.EgressVersion, Store: "cjg-dossiers", Namespace: "cjg",
		ProcessingActivity: "https://register.example/cjg", Agreements: agreements}
}

func policySource(t testing.TB, doc accesspolicy.EgressDocument) *policyfile.Source[Policy] {
	t.Helper()
	p, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	src := NewPolicySource(filepath.Join(t.TempDir(), "absent.json"), nil)
	src.Set(p)
	return src
}

// workloadTokens authenticates by a fixed table of tokens, as a pure
// stand-in for the TokenReview of KubernetesSenders (which the envtest
// integration test uses).
type workloadTokens map[string]logbook.Workload

func (m workloadTokens) AuthenticateWorkload(_ context.Context, token, store string) (logbook.Workload, error) {
	if token == "unavailable" {
		return logbook.Workload{}, &logbook.SenderError{Status: http.StatusServiceUnavailable, Message: "no answer"}
	}
	w, ok := m[token]
	switch {
	case !ok:
		return logbook.Workload{}, &logbook.SenderError{Status: http.StatusUnauthorized, Message: "the token is not valid for audience dossierguard-egress"}
	case w.Namespace+"/cjg-dossiers" != store:
		return logbook.Workload{}, &logbook.SenderError{Status: http.StatusForbidden, Message: "not the store's workload"}
	}
	return w, nil
}

var appPod = logbook.Workload{Namespace: "cjg", ServiceAccount: "cjg-dossier", Pod: "cjg-dossier-0"}

// memorySink keeps the events appended, for the pure unit tests; failing
// makes Append fail.
type memorySink struct {
	mu      sync.Mutex
	events  []auditlog.Event
	failing bool
}

func (s *memorySink) Append(_ context.Context, ev auditlog.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return io.ErrClosedPipe
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *memorySink) Err() error { return nil }

func (s *memorySink) all() []auditlog.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]auditlog.Event(nil), s.events...)
}

// consentFunc is a ConsentChecker.
type consentFunc func(q auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error)

func (f consentFunc) Consent(_ context.Context, q auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error) {
	return f(q)
}
