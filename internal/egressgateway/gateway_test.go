package egressgateway

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
)

// TestSplitPathAndMatch: the first segment names the agreement; the rest
// is the partner path, matched against that agreement's outbound routes
// only, canonical or refused.
func TestSplitPathAndMatch(t *testing.T) {
	p, err := NewPolicy(testDocument(testAgreement("https://vi.example.nl/api/")))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path string
		agreement    bool   // the agreement is known
		route        string // "" when none matches
		dossier      string
		canonical    bool
	}{
		{"POST", "/verwijsindex/signalen/D-1", true, "signal", "D-1", true},
		{"POST", "/verwijsindex/signalen/D-1/notities", true, "health-note", "D-1", true},
		{"GET", "/verwijsindex/signalen", true, "list", "", true},
		{"GET", "/verwijsindex/signalen/D-1", true, "", "", true},
		{"PUT", "/verwijsindex/signalen/D-1", true, "", "", true},
		{"POST", "/verwijsindex/%73ignalen/D-1", true, "signal", "D-1", true},
		{"POST", "/verwijsindex/signalen/../signalen/D-1", true, "", "", false},
		{"POST", "/verwijsindex/signalen/D%2F1", true, "", "", false},
		{"POST", "/verwijsindex/Signalen/D-1", true, "", "", false},
		{"POST", "/verwijsindex/signalen//D-1", true, "", "", false},
		{"POST", "/school/signalen/D-1", false, "", "", true},
		{"POST", "/", false, "", "", true},
	}
	for _, tc := range cases {
		name, rest, ok := SplitPath(tc.path)
		var out Outbound
		var found bool
		if ok {
			out, found, err = p.Match(tc.method, name, rest)
		}
		switch {
		case (out.Agreement != nil) != tc.agreement:
			t.Errorf("%s %s: agreement found %v, want %v", tc.method, tc.path, out.Agreement != nil, tc.agreement)
		case (err == nil) != tc.canonical || (err != nil && !errors.Is(err, auditproxy.ErrNonCanonicalPath)):
			t.Errorf("%s %s: error %v, want canonical %v", tc.method, tc.path, err, tc.canonical)
		case found != (tc.route != ""):
			t.Errorf("%s %s: found %v, want route %q", tc.method, tc.path, found, tc.route)
		case found && (out.Match.Route.Name != tc.route || out.Match.Dossier != tc.dossier):
			t.Errorf("%s %s: route %q dossier %q, want %q %q", tc.method, tc.path, out.Match.Route.Name, out.Match.Dossier, tc.route, tc.dossier)
		case found && tc.path == "/verwijsindex/%73ignalen/D-1" && out.PartnerPath != "/signalen/D-1":
			t.Errorf("partner path %q: the partner must receive the decoded, matched path", out.PartnerPath)
		}
	}
}

// TestNewPolicyRefuses: documents the gateway could not enforce exactly
// are refused, naming the agreement and the rule.
func TestNewPolicyRefuses(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*accesspolicy.EgressAgreement)
		want   string
	}{
		{"http endpoint", func(a *accesspolicy.EgressAgreement) { a.Endpoint = "http://vi.example.nl" }, "https URL"},
		{"user info", func(a *accesspolicy.EgressAgreement) { a.Endpoint = "https://u:p@vi.example.nl" }, "user name or password"},
		{"query", func(a *accesspolicy.EgressAgreement) { a.Endpoint = "https://vi.example.nl/?x=1" }, "query or fragment"},
		{"fragment", func(a *accesspolicy.EgressAgreement) { a.Endpoint = "https://vi.example.nl/#x" }, "query or fragment"},
		{"no host", func(a *accesspolicy.EgressAgreement) { a.Endpoint = "https:///x" }, "https URL with a host"},
		{"route without categories", func(a *accesspolicy.EgressAgreement) { a.Routes[0].Categories = nil }, "lists no data categories"},
		{"route not export", func(a *accesspolicy.EgressAgreement) { a.Routes[0].Action = v1alpha1.ActionWrite }, "action of an outbound route is export"},
		{"route twice", func(a *accesspolicy.EgressAgreement) { a.Routes[1].Name = a.Routes[0].Name }, "listed twice"},
		{"bad pattern", func(a *accesspolicy.EgressAgreement) { a.Routes[0].Path = "/{dossier}/{dossier}" }, "more than once"},
		{"agreement without categories", func(a *accesspolicy.EgressAgreement) { a.Categories = nil }, "lists no data categories"},
		{"agreement name not a label", func(a *accesspolicy.EgressAgreement) { a.Name = "vi.example" }, "DNS label"},
	}
	for _, tc := range cases {
		a := testAgreement("https://vi.example.nl")
		tc.mutate(&a)
		_, err := NewPolicy(testDocument(a))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "agreement") {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// unitWorld is a gateway with the memory sink and a TLS partner.
type unitWorld struct {
	upgrade bool // requests ask to upgrade the connection
	gw      *Gateway
	sink    *memorySink
	partner *testPartner
	now     time.Time
}

func newUnitWorld(t *testing.T, mutate func(*accesspolicy.EgressAgreement), consents auditproxy.ConsentChecker, requests auditproxy.SubjectRequestSource) *unitWorld {
	t.Helper()
	serverCA, clientCA := newTestCA(t, "partner CA"), newTestCA(t, "client CA")
	partner := newTestPartner(t, serverCA, clientCA)
	dir := t.TempDir()
	cert, key := clientCA.issue(t, "cjg-egress", false)
	writeTLSDir(t, dir, "verwijsindex", serverCA.certPEM, cert, key)
	a := testAgreement(partner.srv.URL + "/api")
	if mutate != nil {
		mutate(&a)
	}
	w := &unitWorld{sink: &memorySink{}, partner: partner, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	gw, err := New(Options{Policies: policySource(t, testDocument(a)), Callers: workloadTokens{"app-token": appPod, "other-store": {Namespace: "wijkteam", ServiceAccount: "wijkteam-dossier", Pod: "w-0"}},
		Consents: consents, SubjectRequests: requests, Transports: &PartnerTransports{Dir: dir}, Audit: w.sink,
		PseudonymKey: testPseudonymKey, SyncCompletion: true, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	w.gw = gw
	return w
}

func (w *unitWorld) send(t *testing.T, method, path, token string) (*httptest.ResponseRecorder, auditproxy.Problem) {
	t.Helper()
	r := httptest.NewRequest(method, "http://cjg-dossiers-egress.cjg.svc"+path, strings.NewReader(`{"naam":"..."}`))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if w.upgrade {
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
	}
	rec := httptest.NewRecorder()
	w.gw.ServeHTTP(rec, r)
	var prob auditproxy.Problem
	if rec.Code >= 400 {
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s: %d with Content-Type %q", method, path, rec.Code, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil {
			t.Fatal(err)
		}
	}
	return rec, prob
}

// TestDecisions: each decision of the gateway, allowed and every refusal,
// with the problem that names what is missing, the event recorded, and
// nothing arriving at the partner unless allowed.
func TestDecisions(t *testing.T) {
	pastWindow := func(a *accesspolicy.EgressAgreement) {
		until := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
		a.ValidUntil = &until
	}
	perDossier := func(a *accesspolicy.EgressAgreement) {
		a.LegalBasis, a.LegalReference, a.ConsentMode = v1alpha1.BasisConsent, "", v1alpha1.ConsentPerDossier
	}
	consentGiven := consentFunc(func(q auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error) {
		if q.Dossier != "D-1" || q.Agreement != "verwijsindex" {
			return auditproxy.ConsentAnswer{}, nil
		}
		return auditproxy.ConsentAnswer{Given: true}, nil
	})
	consentWithdrawn := consentFunc(func(auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error) {
		return auditproxy.ConsentAnswer{Withdrawn: true}, nil
	})
	consentNarrowed := consentFunc(func(auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error) {
		return auditproxy.ConsentAnswer{Given: true, Categories: []v1alpha1.DataCategory{"identity"}}, nil
	})
	wholeAgreement := func(a *accesspolicy.EgressAgreement) {
		a.LegalBasis, a.LegalReference, a.ConsentMode, a.ConsentReference = v1alpha1.BasisConsent, "", v1alpha1.ConsentAgreement, "TOE-1"
	}
	consentDown := consentFunc(func(auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error) {
		return auditproxy.ConsentAnswer{}, errors.New("dial tcp: connection refused")
	})
	restricted := auditproxy.StaticRequests{Set: auditproxy.NewRequestEffects("cjg-dossiers", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, "D-1")})}
	objected := auditproxy.StaticRequests{Set: auditproxy.NewRequestEffects("cjg-dossiers", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestObjection, "D-1")})}
	cases := []struct {
		name     string
		mutate   func(*accesspolicy.EgressAgreement)
		consents auditproxy.ConsentChecker
		requests auditproxy.SubjectRequestSource
		method   string
		path     string
		token    string
		status   int
		typ      string
		reason   string
		missing  []string
		activity []string
		detail   string
		dossier  string // of an allowed request, D-1 when empty
	}{
		{name: "allowed under a legal obligation", method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: http.StatusCreated},
		{name: "allowed with consent for the dossier", mutate: perDossier, consents: consentGiven, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: http.StatusCreated},
		{name: "allowed under whole-agreement consent, without a look-up", mutate: wholeAgreement, consents: consentDown, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: http.StatusCreated},
		{name: "consent withdrawn at the source", mutate: perDossier, consents: consentWithdrawn, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonConsentWithdrawn), detail: "withdrawn"},
		{name: "consent that does not cover a category", mutate: perDossier, consents: consentNarrowed, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonConsentNotGiven), missing: []string{"contact"}},
		{name: "agreement not yet valid", mutate: func(a *accesspolicy.EgressAgreement) {
			from := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
			a.ValidFrom = &from
		}, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonNoAgreementInForce), detail: "(not-yet-valid)"},
		{name: "agreement refused by the operator", mutate: func(a *accesspolicy.EgressAgreement) { a.Refused = "MinimisationViolated" },
			method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonNoAgreementInForce), detail: "(refused)"},
		{name: "a pod of another store's workload", method: "POST", path: "/verwijsindex/signalen/D-1", token: "other-store", status: 403, typ: ProblemCallerNotWorkload},
		{name: "connection upgrade", method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403, typ: auditproxy.ProblemUpgradeNotAllowed},
		{name: "method override", method: "POST", path: "/verwijsindex/signalen/D-1?_method=DELETE", token: "app-token", status: 400, typ: auditproxy.ProblemRequestOverride},
		{name: "no token", method: "POST", path: "/verwijsindex/signalen/D-1", status: 401, typ: auditproxy.ProblemUnauthenticated},
		{name: "a token that is not a workload pod's", method: "POST", path: "/verwijsindex/signalen/D-1", token: "forged", status: 401, typ: auditproxy.ProblemUnauthenticated, detail: "not valid for audience"},
		{name: "the API cannot verify the token", method: "POST", path: "/verwijsindex/signalen/D-1", token: "unavailable", status: 503, typ: auditproxy.ProblemIdentityUnavailable},
		{name: "unknown agreement", method: "POST", path: "/school/signalen/D-1", token: "app-token", status: 403, typ: ProblemUnknownAgreement},
		{name: "no outbound route", method: "DELETE", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403, typ: auditproxy.ProblemNoRoute, detail: `agreement "verwijsindex"`},
		{name: "non-canonical path", method: "POST", path: "/verwijsindex/signalen/x/../D-1", token: "app-token", status: 400, typ: auditproxy.ProblemNonCanonicalPath},
		{name: "category outside the agreement", method: "POST", path: "/verwijsindex/signalen/D-1/notities", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonCategoriesNotShared), missing: []string{"health"}},
		{name: "activity the agreement does not serve", method: "POST", path: "/verwijsindex/enquete/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonActivityNotServed), activity: []string{"tevredenheidsonderzoek"}},
		{name: "agreement expired", mutate: pastWindow, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonNoAgreementInForce), detail: "verwijsindex (expired)"},
		{name: "agreement suspended", mutate: func(a *accesspolicy.EgressAgreement) { a.Suspended = true }, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonNoAgreementInForce), detail: "(suspended)"},
		{name: "agreement for ingress only", mutate: func(a *accesspolicy.EgressAgreement) { a.Direction = v1alpha1.DirectionIngress }, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonNoAgreementInForce), detail: "(ingress-only)"},
		{name: "no consent for this dossier", mutate: perDossier, consents: consentGiven, method: "POST", path: "/verwijsindex/signalen/D-2", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonConsentNotGiven)},
		{name: "consent source fails", mutate: perDossier, consents: consentDown, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonConsentUnavailable), detail: "fail closed"},
		{name: "no consent source", mutate: perDossier, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403,
			typ: auditproxy.ProblemAccessDenied, reason: string(auditproxy.ReasonConsentUnavailable)},
		{name: "restricted dossier", requests: restricted, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403, typ: auditproxy.ProblemRestricted},
		{name: "objection to the route", requests: objected, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 403, typ: auditproxy.ProblemObjected},
		{name: "another dossier is restricted", requests: restricted, method: "POST", path: "/verwijsindex/signalen/D-2", token: "app-token", status: http.StatusCreated, dossier: "D-2"},
		{name: "restrictions not loaded", requests: auditproxy.StaticRequests{}, method: "POST", path: "/verwijsindex/signalen/D-1", token: "app-token", status: 503, typ: auditproxy.ProblemRequestsUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newUnitWorld(t, tc.mutate, tc.consents, tc.requests)
			w.upgrade = tc.typ == auditproxy.ProblemUpgradeNotAllowed
			rec, prob := w.send(t, tc.method, tc.path, tc.token)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			events := w.sink.all()
			arrived := w.partner.received()
			checkDecisionMetric(t, w.gw, tc.status == http.StatusCreated, tc.typ, tc.reason)
			if tc.status == http.StatusCreated {
				if len(arrived) != 1 || len(events) != 2 || events[0].Outcome != auditlog.OutcomeAllowed || events[1].Status != http.StatusCreated {
					t.Fatalf("allowed: %d arrived, events %+v", len(arrived), events)
				}
				ev := events[0]
				if ev.Actor != appPod.User() || ev.Action != auditlog.ActionExport || ev.Route != "signal" || ev.Sharing == nil || ev.Sharing.Agreement != "verwijsindex" ||
					ev.DataSubject != auditproxy.DossierPseudonym(testPseudonymKey, cmp.Or(tc.dossier, "D-1")) || ev.ProcessingActivityID != "verwijsindex" {
					t.Errorf("allowed event %+v (sharing %+v)", ev, ev.Sharing)
				}
				return
			}
			if len(arrived) != 0 {
				t.Fatalf("a refused request arrived at the partner: %+v", arrived)
			}
			if len(events) != 1 || events[0].Outcome != auditlog.OutcomeDenied || events[0].Status != tc.status {
				t.Fatalf("refusal events %+v", events)
			}
			switch {
			case prob.Type != tc.typ:
				t.Errorf("problem type %q, want %q (%s)", prob.Type, tc.typ, prob.Detail)
			case prob.Reason != tc.reason:
				t.Errorf("problem reason %q, want %q (%s)", prob.Reason, tc.reason, prob.Detail)
			case !slices.Equal(prob.MissingCategories, tc.missing) || !slices.Equal(prob.MissingActivities, tc.activity):
				t.Errorf("missing categories %v activities %v, want %v %v", prob.MissingCategories, prob.MissingActivities, tc.missing, tc.activity)
			case !strings.Contains(prob.Detail, tc.detail):
				t.Errorf("detail %q, want it to say %q", prob.Detail, tc.detail)
			case strings.Contains(rec.Body.String(), "D-1") || strings.Contains(rec.Body.String(), "D-2"):
				t.Errorf("the problem names the dossier: %s", rec.Body)
			case prob.OperationID != events[0].OperationID:
				t.Errorf("problem operation %q, event %q", prob.OperationID, events[0].OperationID)
			}
		})
	}
}

// subjectRequest is a granted restriction (or objection to route
// signal) of the dossier, decided an hour before the unit world's now.
func subjectRequest(typ v1alpha1.RequestType, dossier string) v1alpha1.DataSubjectRequest {
	r := v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{
		StoreRef: v1alpha1.StoreReference{Name: "cjg-dossiers"}, Type: typ,
		Dossier:  v1alpha1.DossierPseudonym(auditproxy.DossierPseudonym(testPseudonymKey, dossier)),
		Decision: &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC))},
	}}
	if typ == v1alpha1.RequestObjection {
		r.Spec.Objection = &v1alpha1.ObjectionSpec{Purpose: "verwijsindex", Routes: []string{"signal"}}
	}
	return r
}

// checkDecisionMetric: the one decision is counted once, under the store,
// the agreement the path named (none for an unknown one) and a reason of
// the vocabulary that says what the problem says, never other.
func checkDecisionMetric(t *testing.T, gw *Gateway, allowed bool, typ, reason string) {
	t.Helper()
	outcome, want, agreement := "allowed", string(auditproxy.ReasonAgreement), "verwijsindex"
	if !allowed {
		outcome, want = "denied", cmp.Or(reason, strings.TrimPrefix(typ, auditproxy.ProblemTypeBase))
	}
	if typ == ProblemUnknownAgreement {
		agreement = ""
	}
	if !slices.Contains(MetricReasons, auditproxy.DecisionReason(want)) {
		t.Errorf("reason %q is not in MetricReasons", want)
	}
	if n := testutil.CollectAndCount(gw.metrics.decisions); n != 1 {
		t.Errorf("%d decision series, want 1", n)
	}
	if got := testutil.ToFloat64(gw.metrics.decisions.WithLabelValues("cjg-dossiers", agreement, outcome, want)); got != 1 {
		t.Errorf("decisions{agreement=%q,outcome=%q,reason=%q} = %v, want 1", agreement, outcome, want, got)
	}
}
