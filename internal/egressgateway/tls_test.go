package egressgateway

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestPartnerTLSReloaded: the agreement's TLS files are read again when
// they change: a CA bundle that does not trust the partner gives 502 (and
// the attempt is recorded), the right one written in its place is used
// from the next poll on; a rotation half written keeps the last good
// transport; without usable files nothing is sent (503, recorded).
func TestPartnerTLSReloaded(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "partner CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	partner := newTestPartner(t, serverCA, clientCA)
	dir := t.TempDir()
	cert, key := clientCA.issue(t, "cjg-egress", false)
	writeTLSDir(t, dir, "verwijsindex", otherCA.certPEM, cert, key)
	sink := &memorySink{}
	gw, err := New(Options{Policies: policySource(t, testDocument(testAgreement(partner.srv.URL))), Callers: workloadTokens{"app-token": appPod},
		Transports: &PartnerTransports{Dir: dir, Poll: 10 * time.Millisecond}, Audit: sink, PseudonymKey: testPseudonymKey, SyncCompletion: true})
	if err != nil {
		t.Fatal(err)
	}
	w := &unitWorld{gw: gw, sink: sink, partner: partner}

	if rec, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusBadGateway || prob.Type != ProblemPartnerUnavailable {
		t.Fatalf("untrusted partner: %d %+v", rec.Code, prob)
	}
	if evs := sink.all(); len(evs) != 2 || evs[0].Outcome != auditlog.OutcomeAllowed || evs[1].Status != http.StatusBadGateway {
		t.Fatalf("events %+v", evs)
	}
	writeTLSDir(t, dir, "verwijsindex", serverCA.certPEM, nil, nil)
	time.Sleep(20 * time.Millisecond)
	if rec, _ := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusCreated {
		t.Fatalf("after the CA bundle was replaced: %d %s", rec.Code, rec.Body)
	}
	// Half written: the key no longer matches the certificate.
	_, otherKey := clientCA.issue(t, "cjg-egress", false)
	writeTLSDir(t, dir, "verwijsindex", nil, nil, otherKey)
	time.Sleep(20 * time.Millisecond)
	if rec, _ := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusCreated {
		t.Fatalf("while a rotation is half written: %d %s", rec.Code, rec.Body)
	}
	if n := len(partner.received()); n != 2 {
		t.Fatalf("%d arrived, want 2", n)
	}

	// No usable files and no last good transport: refused, recorded.
	fresh := &PartnerTransports{Dir: dir}
	if _, err := fresh.For("verwijsindex", true); !errors.Is(err, ErrTLSMaterial) {
		t.Errorf("mismatched key pair: %v, want ErrTLSMaterial", err)
	}
	if err := os.Remove(filepath.Join(dir, "verwijsindex", accesspolicy.EgressCAFile)); err != nil {
		t.Fatal(err)
	}
	gw.transports = fresh
	before := len(sink.all())
	if rec, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusServiceUnavailable || prob.Type != ProblemPartnerTLSUnavailable {
		t.Fatalf("no CA bundle: %d %+v", rec.Code, prob)
	}
	if evs := sink.all()[before:]; len(evs) != 1 || evs[0].Outcome != auditlog.OutcomeDenied || evs[0].Status != http.StatusServiceUnavailable {
		t.Errorf("events %+v", evs)
	}
	if n := len(partner.received()); n != 2 {
		t.Errorf("%d arrived, want still 2", n)
	}
}

// TestAuditFailureSendsNothing: when the decision cannot be recorded,
// nothing leaves and the caller gets 503.
func TestAuditFailureSendsNothing(t *testing.T) {
	w := newUnitWorld(t, nil, nil, nil)
	w.sink.failing = true
	if rec, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusServiceUnavailable || prob.Type != "https://dossierguard.io/problems/audit-unavailable" {
		t.Fatalf("%d %+v", rec.Code, prob)
	}
	if n := len(w.partner.received()); n != 0 {
		t.Errorf("%d requests left without a record", n)
	}
}

// TestRedirectNotFollowed: a partner's redirect goes back to the
// application as it is; the gateway sends nothing to where it points.
func TestRedirectNotFollowed(t *testing.T) {
	w := newUnitWorld(t, nil, nil, nil)
	w.partner.mu.Lock()
	w.partner.redirect = w.partner.srv.URL + "/elsewhere/D-1"
	w.partner.mu.Unlock()
	rec, _ := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token")
	if rec.Code != http.StatusFound || rec.Header().Get("Location") == "" {
		t.Fatalf("status %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	if got := w.partner.received(); len(got) != 1 || got[0].path != "/api/signalen/D-1" {
		t.Errorf("arrived %+v, want the one request", got)
	}
	if evs := w.sink.all(); len(evs) != 2 || evs[1].Status != http.StatusFound {
		t.Errorf("events %+v", evs)
	}
}
