package egressgateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// cluster is a real API server with store cjg/cjg-dossiers, the pod of its
// workload and a pod that is not the workload's; tokens are TokenRequests
// bound to the pods, as the kubelet projects them.
type cluster struct {
	c    client.Client
	pods map[string]*corev1.Pod
}

var (
	clusterOnce sync.Once
	shared      *cluster
	sharedEnv   *testenv.Env
	clusterErr  error
)

// TestMain stops the API server and etcd that the first integration test
// started: a process left running outlives the test binary and keeps the
// files it inherited open.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEnv != nil {
		_ = sharedEnv.Stop()
	}
	os.Exit(code)
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	clusterOnce.Do(func() {
		env, err := testenv.Start()
		if err != nil {
			clusterErr = err
			return
		}
		sharedEnv = env
		shared, clusterErr = populate(env.Client)
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return shared
}

func populate(c client.Client) (*cluster, error) {
	ctx := context.Background()
	cl := &cluster{c: c, pods: map[string]*corev1.Pod{}}
	selected := map[string]string{"app.kubernetes.io/name": "cjg-dossier"}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cjg"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: "cjg-dossier"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: "toolbox"}},
		&v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: "cjg-dossiers"},
			Spec: v1alpha1.DossierStoreSpec{Service: v1alpha1.Service("YouthAndFamilyCentre"), Organisation: "Gemeente Voorbeeldstad",
				DataCategories: []v1alpha1.DataCategory{"identity", "contact"},
				Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: selected},
					ServiceAccountName: "cjg-dossier", AppPort: 8080},
				Storage: v1alpha1.StorageSpec{StorageClassName: "encrypted-ssd", Size: "1Gi"}}},
	}
	for _, p := range []struct{ name, sa string }{{"cjg-dossier-0", "cjg-dossier"}, {"toolbox", "toolbox"}} {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: p.name, Labels: selected},
			Spec: corev1.PodSpec{ServiceAccountName: p.sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}}})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return nil, err
		}
		if p, ok := o.(*corev1.Pod); ok {
			cl.pods[p.Name] = p
		}
	}
	return cl, nil
}

func (cl *cluster) token(t *testing.T, pod, audience string) string {
	t.Helper()
	p := cl.pods[pod]
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Spec.ServiceAccountName}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}}
	if err := cl.c.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatalf("TokenRequest for %s: %v", pod, err)
	}
	return tr.Status.Token
}

// gatewayWorld is the gateway served over HTTP with the real audit writer
// on a temporary directory, the egress policy read from a file, the
// workload authenticated by TokenReview, a real consent source and a real
// TLS partner that requires a client certificate.
type gatewayWorld struct {
	url     string
	logPath string
	pub     ed25519.PublicKey
	writer  *auditlog.Writer
	gw      *Gateway
	partner *testPartner
	mu      sync.Mutex
	now     time.Time
}

func (w *gatewayWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *gatewayWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func newGatewayWorld(t *testing.T, cl *cluster) *gatewayWorld {
	t.Helper()
	serverCA, clientCA, rogueCA := newTestCA(t, "partner CA"), newTestCA(t, "client CA"), newTestCA(t, "another CA")
	partner := newTestPartner(t, serverCA, clientCA)
	t0 := time.Now().UTC().Truncate(time.Second)
	w := &gatewayWorld{partner: partner, now: t0}

	// verwijsindex: a legal obligation until an hour from now; school:
	// per-dossier consent; misconfigured: a CA bundle that did not sign
	// the partner's certificate.
	until := t0.Add(time.Hour)
	vi := testAgreement(partner.srv.URL + "/api")
	vi.ValidUntil = &until
	school := testAgreement(partner.srv.URL + "/school")
	school.Name, school.LegalBasis, school.LegalReference, school.ConsentMode = "school", v1alpha1.BasisConsent, "", v1alpha1.ConsentPerDossier
	misconfigured := testAgreement(partner.srv.URL + "/api")
	misconfigured.Name = "misconfigured"
	dir := t.TempDir()
	cert, key := clientCA.issue(t, "cjg-egress", false)
	writeTLSDir(t, dir, "verwijsindex", serverCA.certPEM, cert, key)
	writeTLSDir(t, dir, "school", serverCA.certPEM, cert, key)
	writeTLSDir(t, dir, "misconfigured", rogueCA.certPEM, cert, key)

	data, _, err := accesspolicy.EncodeEgress(testDocument(misconfigured, school, vi))
	if err != nil {
		t.Fatal(err)
	}
	policyPath := filepath.Join(t.TempDir(), accesspolicy.EgressConfigMapKey)
	if err := os.WriteFile(policyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	policies := NewPolicySource(policyPath, nil)
	if _, err := policies.Reload(); err != nil {
		t.Fatal(err)
	}

	consentSrv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		http.Error(rw, "database down", http.StatusInternalServerError)
	}))
	t.Cleanup(consentSrv.Close)
	consents, err := auditproxy.NewHTTPConsents(consentSrv.URL+"/consent/{dossier}?agreement={agreement}", consentSrv.Client(), 16, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	w.pub, w.logPath = pub, filepath.Join(t.TempDir(), "audit.jsonl")
	w.writer, err = auditlog.NewWriter(auditlog.Options{Path: w.logPath, SigningKey: priv,
		Chain: &auditlog.Chain{Store: "cjg/cjg-dossiers", Pod: "cjg-dossiers-egress-0"}})
	if err != nil {
		t.Fatal(err)
	}
	w.gw, err = New(Options{Policies: policies, Consents: consents, Transports: &PartnerTransports{Dir: dir},
		Callers: &logbook.KubernetesSenders{Client: cl.c, Audience: v1alpha1.EgressGatewayTokenAudience},
		// Completions in order, so that the test can read the log in order.
		Audit: w.writer, PseudonymKey: testPseudonymKey, Now: w.clock, SyncCompletion: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.gw)
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *gatewayWorld) send(t *testing.T, method, path, token, body string) (int, auditproxy.Problem) {
	t.Helper()
	req, _ := http.NewRequest(method, w.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "X-Internal-Hop")
	req.Header.Set("X-Internal-Hop", "gateway only")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var prob auditproxy.Problem
	if resp.StatusCode >= 400 {
		_ = json.NewDecoder(resp.Body).Decode(&prob)
	}
	return resp.StatusCode, prob
}

// TestGatewayIntegration: the must-show stories of the gateway with real
// parts: allowed categories arrive at the partner over mutual TLS and are
// in the audit log, whose chain verifies; a route with a category outside
// the agreement is refused and nothing arrives; the agreement's expiry
// refuses the next request; a consent source that fails refuses; a
// partner whose certificate the agreement's CA did not sign gets 502, and
// that is recorded; callers other than the workload's pod are refused.
func TestGatewayIntegration(t *testing.T) {
	cl := newCluster(t)
	w := newGatewayWorld(t, cl)
	app := cl.token(t, "cjg-dossier-0", v1alpha1.EgressGatewayTokenAudience)

	// Allowed: identity and contact under the legal obligation.
	if status, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1?bron=cjg", app, `{"signaal":true}`); status != http.StatusCreated {
		t.Fatalf("allowed signal: %d %+v", status, prob)
	}
	got := w.partner.received()
	switch {
	case len(got) != 1:
		t.Fatalf("%d requests arrived, want 1", len(got))
	case got[0].method != "POST" || got[0].path != "/api/signalen/D-1" || got[0].query != "bron=cjg" || got[0].body != `{"signaal":true}`:
		t.Errorf("arrived %+v", got[0])
	case got[0].clientCN != "cjg-egress":
		t.Errorf("client certificate %q, want the agreement's", got[0].clientCN)
	case got[0].header.Get("Authorization") != "" || got[0].header.Get("X-Internal-Hop") != "":
		t.Errorf("the caller's token or a hop-by-hop header left the gateway (Authorization set: %v, X-Internal-Hop set: %v)",
			got[0].header.Get("Authorization") != "", got[0].header.Get("X-Internal-Hop") != "")
	case !strings.HasPrefix(got[0].header.Get("Traceparent"), "00-"):
		t.Errorf("no traceparent for the partner: %v", got[0].header)
	}

	// A category outside the agreement: refused, nothing arrives.
	if status, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1/notities", app, `{}`); status != http.StatusForbidden ||
		prob.Reason != string(auditproxy.ReasonCategoriesNotShared) || len(prob.MissingCategories) != 1 || prob.MissingCategories[0] != "health" {
		t.Errorf("health note: %d %+v", status, prob)
	}
	// Callers other than the workload's pod.
	if status, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", cl.token(t, "toolbox", v1alpha1.EgressGatewayTokenAudience), `{}`); status != http.StatusForbidden || prob.Type != ProblemCallerNotWorkload {
		t.Errorf("toolbox pod: %d %+v", status, prob)
	}
	if status, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", cl.token(t, "cjg-dossier-0", v1alpha1.LogbookTokenAudience), `{}`); status != http.StatusUnauthorized || prob.Type != auditproxy.ProblemUnauthenticated {
		t.Errorf("the logbook's token: %d %+v", status, prob)
	}
	// The consent source fails: refused (fail closed).
	if status, prob := w.send(t, "POST", "/school/signalen/D-1", app, `{}`); status != http.StatusForbidden || prob.Reason != string(auditproxy.ReasonConsentUnavailable) {
		t.Errorf("consent source down: %d %+v", status, prob)
	}
	if n := len(w.partner.received()); n != 1 {
		t.Fatalf("%d requests arrived after the refusals, want still 1", n)
	}
	// The partner's certificate is not signed by the agreement's CA.
	if status, prob := w.send(t, "POST", "/misconfigured/signalen/D-1", app, `{}`); status != http.StatusBadGateway || prob.Type != ProblemPartnerUnavailable {
		t.Errorf("untrusted partner certificate: %d %+v", status, prob)
	}
	// The agreement expires: the next request is refused.
	w.advance(time.Hour)
	if status, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", app, `{}`); status != http.StatusForbidden ||
		prob.Reason != string(auditproxy.ReasonNoAgreementInForce) || !strings.Contains(prob.Detail, "expired") {
		t.Errorf("after expiry: %d %+v", status, prob)
	}
	if n := len(w.partner.received()); n != 1 {
		t.Errorf("%d requests arrived in all, want 1", n)
	}

	w.gw.Wait()
	if err := w.writer.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.Verify(bytes.NewReader(raw), w.pub)
	if err != nil || !res.OK {
		t.Fatalf("the audit log does not verify: %v %v", res, err)
	}
	type line struct {
		route, agreement string
		outcome          auditlog.Outcome
		status           int
		consent          auditlog.ConsentOutcome
	}
	var lines []line
	err = auditlog.ReadEvents(bytes.NewReader(raw), func(r *auditlog.Record) error {
		ev := r.Event
		l := line{route: ev.Route, outcome: ev.Outcome, status: ev.Status}
		if ev.Sharing != nil {
			l.agreement, l.consent = ev.Sharing.Agreement, ev.Sharing.Consent
		}
		if ev.Outcome == auditlog.OutcomeAllowed && (ev.Action != auditlog.ActionExport || ev.Actor != "system:serviceaccount:cjg:cjg-dossier") {
			t.Errorf("allowed event %+v", ev)
		}
		lines = append(lines, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []line{
		{"signal", "verwijsindex", auditlog.OutcomeAllowed, 0, auditlog.ConsentNotRequired},
		{"signal", "verwijsindex", auditlog.OutcomeAllowed, http.StatusCreated, auditlog.ConsentNotRequired},
		{"health-note", "verwijsindex", auditlog.OutcomeDenied, http.StatusForbidden, auditlog.ConsentNotChecked},
		{"signal", "verwijsindex", auditlog.OutcomeDenied, http.StatusForbidden, auditlog.ConsentNotChecked},
		{"signal", "verwijsindex", auditlog.OutcomeDenied, http.StatusUnauthorized, auditlog.ConsentNotChecked},
		{"signal", "school", auditlog.OutcomeDenied, http.StatusForbidden, auditlog.ConsentUnavailable},
		{"signal", "misconfigured", auditlog.OutcomeAllowed, 0, auditlog.ConsentNotRequired},
		{"signal", "misconfigured", auditlog.OutcomeAllowed, http.StatusBadGateway, auditlog.ConsentNotRequired},
		{"signal", "verwijsindex", auditlog.OutcomeDenied, http.StatusForbidden, auditlog.ConsentNotChecked},
	}
	if len(lines) != len(want) {
		t.Fatalf("audit events:\n got %+v\nwant %+v", lines, want)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, lines[i], want[i])
		}
	}
	if bytes.Contains(raw, []byte("D-1")) {
		t.Error("the audit log holds the dossier id")
	}
}
