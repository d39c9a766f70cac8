package logbook

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// senderWorld is a real API server with store wijkteam/wijkteam-dossiers,
// its workload's pod, and pods that must not ship its chains.
type senderWorld struct {
	c    client.Client
	pods map[string]*corev1.Pod
}

func newSenderWorld(t *testing.T) *senderWorld {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	w := &senderWorld{c: env.Client, pods: map[string]*corev1.Pod{}}
	selected := map[string]string{"app.kubernetes.io/name": "wijkteam-dossier"}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wijkteam"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "wijkteam-dossier"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "toolbox"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "wijkteam-dossier"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "wijkteam-dossiers-egress"}},
		&v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "wijkteam-dossiers"},
			Spec: v1alpha1.DossierStoreSpec{Service: v1alpha1.Service("NeighbourhoodTeam"), Organisation: "Gemeente Voorbeeldstad",
				DataCategories: []v1alpha1.DataCategory{"identity"},
				Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: selected},
					ServiceAccountName: "wijkteam-dossier", AppPort: 8080},
				Storage: v1alpha1.StorageSpec{StorageClassName: "encrypted-ssd", Size: "1Gi"}}},
	}
	for _, o := range objs {
		if err := w.c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	for _, p := range []struct{ ns, name, sa string }{
		{"wijkteam", "wijkteam-dossier-0", "wijkteam-dossier"},        // the workload's pod
		{"wijkteam", "toolbox", "toolbox"},                            // the workload's labels, another ServiceAccount
		{"wijkteam", "lookalike", "wijkteam-dossier"},                 // the workload's ServiceAccount, not selected
		{"other", "wijkteam-dossier-0", "wijkteam-dossier"},           // the same names in another namespace
		{"wijkteam", "egress-0", "wijkteam-dossiers-egress"},          // the store's egress gateway
		{"wijkteam", "egress-unlabelled", "wijkteam-dossiers-egress"}, // the gateway's ServiceAccount, not its label
	} {
		labels := selected
		switch p.name {
		case "lookalike":
			labels = map[string]string{"app": "lookalike"}
		case "egress-0":
			labels = map[string]string{v1alpha1.LabelEgressGateway: "wijkteam-dossiers"}
		case "egress-unlabelled":
			labels = map[string]string{v1alpha1.LabelEgressGateway: "another-store"}
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name, Labels: labels},
			Spec: corev1.PodSpec{ServiceAccountName: p.sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		if err := w.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		w.pods[p.ns+"/"+p.name] = pod
	}
	return w
}

// token is a TokenRequest of the pod's ServiceAccount bound to the pod.
func (w *senderWorld) token(t *testing.T, pod, audience string) string {
	t.Helper()
	p := w.pods[pod]
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Spec.ServiceAccountName}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}}
	if err := w.c.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatalf("TokenRequest for %s: %v", pod, err)
	}
	return tr.Status.Token
}

// TestKubernetesSenders: a pod ships the chains of a store only with its
// own projected token of the logbook's audience, as the store's workload
// (its namespace, its ServiceAccount, selected by it); every other sender
// is refused with a status and a reason that names the rule.
func TestKubernetesSenders(t *testing.T) {
	w := newSenderWorld(t)
	ctx := context.Background()
	ks := &KubernetesSenders{Client: w.c}
	const st, pod = "wijkteam/wijkteam-dossiers", "wijkteam-dossier-0"
	good := w.token(t, "wijkteam/wijkteam-dossier-0", DefaultSenderAudience)

	for _, tc := range []struct {
		name, token, store, pod string
		status                  int // 0: allowed
		reason                  string
	}{
		{"the workload's pod", good, st, pod, 0, ""},
		{"made-up token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", st, pod, http.StatusUnauthorized, "not valid for audience"},
		{"another audience", w.token(t, "wijkteam/wijkteam-dossier-0", "https://kubernetes.default.svc"), st, pod, http.StatusUnauthorized, "not valid for audience"},
		{"claims another pod", good, st, "wijkteam-dossier-1", http.StatusForbidden, "the token belongs to pod wijkteam-dossier-0"},
		{"claims a store of another namespace", good, "veilig-thuis/vt-dossiers", pod, http.StatusForbidden, "namespace wijkteam may not act for store"},
		{"no such store", good, "wijkteam/other-dossiers", pod, http.StatusForbidden, "no DossierStore"},
		{"another ServiceAccount", w.token(t, "wijkteam/toolbox", DefaultSenderAudience), st, "toolbox", http.StatusForbidden, "ServiceAccount toolbox is not the workload's"},
		{"not selected by the store", w.token(t, "wijkteam/lookalike", DefaultSenderAudience), st, "lookalike", http.StatusForbidden, "not selected"},
		{"the same names in another namespace", w.token(t, "other/wijkteam-dossier-0", DefaultSenderAudience), st, pod, http.StatusForbidden, "namespace other may not act for store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ks.AuthenticateSender(ctx, tc.token, tc.store, tc.pod)
			var se *SenderError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.status != 0 && (!errors.As(err, &se) || se.Status != tc.status || !strings.Contains(se.Message, tc.reason)):
				t.Fatalf("got %v, want %d with %q", err, tc.status, tc.reason)
			case se != nil && strings.Contains(se.Message, tc.token):
				t.Fatalf("the reason quotes the token")
			}
		})
	}

	// A pod deleted and replaced under the same name: the old pod's token
	// no longer counts (the API server invalidates a token bound to a
	// deleted pod, and the UID would not match).
	old := w.pods["wijkteam/wijkteam-dossier-0"]
	if err := w.c.Delete(ctx, old, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	replaced := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: pod, Labels: old.Labels},
		Spec: corev1.PodSpec{ServiceAccountName: "wijkteam-dossier", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := w.c.Create(ctx, replaced)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fresh := &KubernetesSenders{Client: w.c} // no cached verdict
	var se *SenderError
	if err := fresh.AuthenticateSender(ctx, good, st, pod); !errors.As(err, &se) || se.Status == 0 {
		t.Errorf("the deleted pod's token: %v, want a refusal", err)
	}
}

// TestKubernetesSendersEgressGateways: with EgressGateways (the logbook)
// the store's gateway pod ships the store's chains as itself; without it,
// or as a caller of a gateway (AuthenticateWorkload), it is refused, and
// the gateway's ServiceAccount without the gateway's label is refused too.
func TestKubernetesSendersEgressGateways(t *testing.T) {
	w := newSenderWorld(t)
	ctx := context.Background()
	const st = "wijkteam/wijkteam-dossiers"
	gw := w.token(t, "wijkteam/egress-0", DefaultSenderAudience)
	unlabelled := w.token(t, "wijkteam/egress-unlabelled", DefaultSenderAudience)
	logbook := &KubernetesSenders{Client: w.c, EgressGateways: true}
	if err := logbook.AuthenticateSender(ctx, gw, st, "egress-0"); err != nil {
		t.Errorf("the gateway's pod shipping its chain: %v", err)
	}
	for _, tc := range []struct {
		name   string
		check  func() error
		reason string
	}{
		{"another pod than the gateway's", func() error { return logbook.AuthenticateSender(ctx, gw, st, "wijkteam-dossier-0") }, "the token belongs to pod egress-0"},
		{"the gateway's ServiceAccount, another store's label", func() error { return logbook.AuthenticateSender(ctx, unlabelled, st, "egress-unlabelled") }, "is not labelled"},
		{"without EgressGateways", func() error {
			return (&KubernetesSenders{Client: w.c}).AuthenticateSender(ctx, gw, st, "egress-0")
		}, "is not the workload's"},
		{"a gateway as a caller of the gateway", func() error {
			_, err := logbook.AuthenticateWorkload(ctx, gw, st)
			return err
		}, "is not the workload's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var se *SenderError
			if err := tc.check(); !errors.As(err, &se) || se.Status != http.StatusForbidden || !strings.Contains(se.Message, tc.reason) {
				t.Fatalf("got %v, want 403 with %q", err, tc.reason)
			}
		})
	}
}

// TestShippingAuthenticatedByKubernetes runs the logbook with
// KubernetesSenders on PostgreSQL and a real API server: the workload pod's
// proxy, presenting its projected token from a file, has its events
// acknowledged; a proxy presenting another pod's token ships nothing, and
// its Appends fail, so its requests would be refused with 503.
func TestShippingAuthenticatedByKubernetes(t *testing.T) {
	w := newSenderWorld(t)
	l, pool := newLogbook(t)
	const st = "wijkteam/wijkteam-dossiers"
	if err := l.TrustKey(context.Background(), st, signingKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	l.senders = &KubernetesSenders{Client: w.c}
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()

	ship := func(pod, tokenOf string, n int) error {
		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "token")
		if err := os.WriteFile(tokenFile, []byte(w.token(t, tokenOf, DefaultSenderAudience)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		wr, err := auditlog.NewWriter(auditlog.Options{
			Path: filepath.Join(dir, "audit.jsonl"), SigningKey: signingKey, CheckpointInterval: -1,
			Chain:        &auditlog.Chain{Store: st, Pod: pod},
			Logbook:      &auditlog.LogbookOptions{URL: srv.URL, AckTimeout: time.Second, TokenFile: tokenFile},
			DrainTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = wr.Close() }()
		for i := range n {
			if err := wr.Append(context.Background(), testEvent(i, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ship("wijkteam-dossier-0", "wijkteam/wijkteam-dossier-0", 3); err != nil {
		t.Fatalf("the workload's pod: %v", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records WHERE type = 'event'"); n != 3 {
		t.Fatalf("%d events stored, want the 3 acknowledged", n)
	}
	// The toolbox pod presents its own token but claims the workload's pod.
	if err := ship("wijkteam-dossier-0", "wijkteam/toolbox", 1); err == nil {
		t.Fatal("a chain shipped with another pod's token was acknowledged")
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_chains"); n != 1 {
		t.Errorf("%d chains stored, want only the workload pod's", n)
	}
}

// TestKubernetesWorkloads: AuthenticateWorkload, as the egress gateway uses
// it with its own audience, names the workload's pod and ServiceAccount;
// a token of the logbook's audience, and the pods the store does not
// select, are refused.
func TestKubernetesWorkloads(t *testing.T) {
	w := newSenderWorld(t)
	ctx := context.Background()
	ks := &KubernetesSenders{Client: w.c, Audience: v1alpha1.EgressGatewayTokenAudience}
	const st = "wijkteam/wijkteam-dossiers"
	got, err := ks.AuthenticateWorkload(ctx, w.token(t, "wijkteam/wijkteam-dossier-0", v1alpha1.EgressGatewayTokenAudience), st)
	if err != nil || got != (Workload{Namespace: "wijkteam", ServiceAccount: "wijkteam-dossier", Pod: "wijkteam-dossier-0"}) ||
		got.User() != "system:serviceaccount:wijkteam:wijkteam-dossier" {
		t.Fatalf("the workload's pod: %+v %v", got, err)
	}
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"the logbook's audience", w.token(t, "wijkteam/wijkteam-dossier-0", DefaultSenderAudience), http.StatusUnauthorized},
		{"not selected by the store", w.token(t, "wijkteam/lookalike", v1alpha1.EgressGatewayTokenAudience), http.StatusForbidden},
		{"another namespace", w.token(t, "other/wijkteam-dossier-0", v1alpha1.EgressGatewayTokenAudience), http.StatusForbidden},
	} {
		var se *SenderError
		if _, err := ks.AuthenticateWorkload(ctx, tc.token, st); !errors.As(err, &se) || se.Status != tc.status {
			t.Errorf("%s: %v, want %d", tc.name, err, tc.status)
		}
	}
}

// TestKubernetesWorkloadsCoalesced: a burst of requests with a new token
// makes one TokenReview, not one each; the verdict then serves the rest.
func TestKubernetesWorkloadsCoalesced(t *testing.T) {
	w := newSenderWorld(t)
	counted := &countingReviews{Client: w.c}
	reviews := &counted.n
	ks := &KubernetesSenders{Client: counted, Audience: v1alpha1.EgressGatewayTokenAudience}
	token := w.token(t, "wijkteam/wijkteam-dossier-0", v1alpha1.EgressGatewayTokenAudience)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ks.AuthenticateWorkload(context.Background(), token, "wijkteam/wijkteam-dossiers"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := reviews.Load(); n < 1 || n > 2 {
		t.Errorf("%d TokenReviews for 32 requests with one token, want 1 (2 at most, when one arrives as the first finishes)", n)
	}
}

// countingReviews is the real client, counting the TokenReviews it creates.
type countingReviews struct {
	client.Client
	n atomic.Int32
}

func (c *countingReviews) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*authenticationv1.TokenReview); ok {
		c.n.Add(1)
	}
	return c.Client.Create(ctx, obj, opts...)
}
