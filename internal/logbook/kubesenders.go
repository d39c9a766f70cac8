package logbook

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// The extra fields of a TokenReview of a pod-bound ServiceAccount token.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// DefaultSenderVerdictTTL is how long KubernetesSenders keeps a verdict.
const DefaultSenderVerdictTTL = time.Minute

// maxSenderVerdicts bounds the verdicts kept, so that a flood of made-up
// tokens cannot grow the cache.
const maxSenderVerdicts = 4096

// KubernetesSenders authenticates audit proxies by the projected
// ServiceAccount token the webhook mounts into each proxy (audience
// Audience, bound to its pod), and lets a pod ship the chains of a store
// only when it belongs to that store's workload (the egress gateway
// authenticates the workload's requests the same way, AuthenticateWorkload,
// with its own audience):
//
//  1. a TokenReview with the audience says the token is valid, of a
//     ServiceAccount, and bound to a pod (name and UID);
//  2. the store is in the token's namespace, and the request names the
//     token's pod;
//  3. the DossierStore exists and its spec.workload.serviceAccountName is
//     the token's ServiceAccount;
//  4. the pod exists with the token's UID (not a later pod of the same
//     name) and the store's spec.workload.selector selects it.
//
// A verdict (allowed, or refused with 401 or 403) is kept for TTL by a hash
// of the token, the store and the pod; when the API server cannot answer,
// the sender gets 503 and retries. The token is never logged or kept.
type KubernetesSenders struct {
	// Client creates TokenReviews and reads Pods and DossierStores.
	Client client.Client
	// Audience of the tokens; DefaultSenderAudience when empty.
	Audience string
	// TTL of a verdict; DefaultSenderVerdictTTL when zero.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// EgressGateways lets AuthenticateSender also accept the pods of the
	// store's egress gateway, which write their own chains: a pod of
	// ServiceAccount <store>-egress labelled
	// privacy.dossierguard.io/egress-gateway=<store> (the operator's
	// Deployment). AuthenticateWorkload never accepts them: a gateway is
	// no caller of a gateway.
	EgressGateways bool

	mu       sync.Mutex
	verdicts map[[sha256.Size]byte]senderVerdict
	// flight coalesces the checks of one token and store that arrive
	// together, so that a burst of requests with a new token makes one
	// TokenReview.
	flight singleflight.Group
}

type senderVerdict struct {
	pod   Workload
	err   error
	until time.Time
}

// AuthenticateSender implements SenderAuthenticator: the token is a pod's
// of the store's workload (AuthenticateWorkload), and the request names
// that pod.
func (k *KubernetesSenders) AuthenticateSender(ctx context.Context, token, store, pod string) error {
	got, err := k.authenticate(ctx, token, store, k.EgressGateways)
	if err != nil {
		return err
	}
	if got.Pod != pod {
		return refuse(http.StatusForbidden, "the token belongs to pod %s, but the request ships as pod %s", got.Pod, pod)
	}
	return nil
}

// Workload is a pod of a store's workload, as a verified token names it.
type Workload struct {
	// Namespace, ServiceAccount and Pod are the token's.
	Namespace, ServiceAccount, Pod string
}

// User is the Kubernetes user name of the workload's ServiceAccount,
// system:serviceaccount:<namespace>:<name>.
func (w Workload) User() string {
	return "system:serviceaccount:" + w.Namespace + ":" + w.ServiceAccount
}

// senderCheckTimeout bounds one check of a token with the API server.
const senderCheckTimeout = 10 * time.Second

// keep remembers a verdict for TTL, unless it is "could not decide" (503).
func (k *KubernetesSenders) keep(key [sha256.Size]byte, pod Workload, err error, now time.Time) {
	var se *SenderError
	if err != nil && (!errors.As(err, &se) || se.Status == http.StatusServiceUnavailable) {
		return
	}
	ttl := k.TTL
	if ttl <= 0 {
		ttl = DefaultSenderVerdictTTL
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.verdicts == nil || len(k.verdicts) >= maxSenderVerdicts {
		k.verdicts = map[[sha256.Size]byte]senderVerdict{}
	}
	k.verdicts[key] = senderVerdict{pod: pod, err: err, until: now.Add(ttl)}
}

// AuthenticateWorkload returns the pod of the store's (NAMESPACE/NAME)
// workload that the token belongs to, by the checks of KubernetesSenders
// other than the pod the request names; the egress gateway authenticates
// the application's requests with it. A refusal is a *SenderError (401,
// 403, or 503 when the API server cannot answer); verdicts other than 503
// are kept for TTL by a hash of the token and the store.
func (k *KubernetesSenders) AuthenticateWorkload(ctx context.Context, token, store string) (Workload, error) {
	return k.authenticate(ctx, token, store, false)
}

// authenticate is AuthenticateWorkload, also accepting the store's egress
// gateway pods when gateways is set.
func (k *KubernetesSenders) authenticate(ctx context.Context, token, store string, gateways bool) (Workload, error) {
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	mode := "workload"
	if gateways {
		mode = "workload+gateway"
	}
	key := sha256.Sum256([]byte(token + "\x00" + store + "\x00" + mode))
	k.mu.Lock()
	v, ok := k.verdicts[key]
	k.mu.Unlock()
	if ok && now().Before(v.until) {
		return v.pod, v.err
	}
	v2, err, _ := k.flight.Do(string(key[:]), func() (any, error) {
		// The check runs for everyone waiting: bound by its own timeout,
		// not by one caller's context, which may end before the others'.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), senderCheckTimeout)
		defer cancel()
		pod, err := k.decide(ctx, token, store, gateways)
		k.keep(key, pod, err, now())
		return pod, err
	})
	pod, _ := v2.(Workload)
	return pod, err
}

func (k *KubernetesSenders) audience() string {
	if k.Audience != "" {
		return k.Audience
	}
	return DefaultSenderAudience
}

func refuse(status int, format string, args ...any) error {
	return &SenderError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// unavailable is the answer when the API server cannot decide; the raw
// error stays out of the answer and the logs.
var unavailable = &SenderError{Status: http.StatusServiceUnavailable, Message: "the logbook could not check the sender with the Kubernetes API; retry"}

// decide runs the checks of KubernetesSenders but the pod the request
// names, and returns the token's pod.
func (k *KubernetesSenders) decide(ctx context.Context, token, store string, gateways bool) (Workload, error) {
	id, err := k.review(ctx, token)
	if err != nil {
		return Workload{}, err
	}
	storeNS, storeName, ok := strings.Cut(store, "/")
	if !ok || storeNS == "" || storeName == "" {
		return Workload{}, refuse(http.StatusBadRequest, "the store %q must be NAMESPACE/NAME", store)
	}
	if storeNS != id.namespace {
		return Workload{}, refuse(http.StatusForbidden, "a pod of namespace %s may not act for store %s: a store's workload is in its own namespace", id.namespace, store)
	}
	ds := &v1alpha1.DossierStore{}
	switch err := k.Client.Get(ctx, client.ObjectKey{Namespace: storeNS, Name: storeName}, ds); {
	case apierrors.IsNotFound(err):
		return Workload{}, refuse(http.StatusForbidden, "there is no DossierStore %s", store)
	case err != nil:
		return Workload{}, unavailable
	}
	if gateways && id.serviceAccount == resources.EgressGatewayName(ds) {
		if err := k.checkGatewayPod(ctx, ds, id); err != nil {
			return Workload{}, err
		}
		return Workload{Namespace: id.namespace, ServiceAccount: id.serviceAccount, Pod: id.pod}, nil
	}
	if sa := ds.Spec.Workload.ServiceAccountName; sa != id.serviceAccount {
		return Workload{}, refuse(http.StatusForbidden, "ServiceAccount %s is not the workload's of store %s (spec.workload.serviceAccountName %s)", id.serviceAccount, store, sa)
	}
	if err := k.checkPod(ctx, ds, id); err != nil {
		return Workload{}, err
	}
	return Workload{Namespace: id.namespace, ServiceAccount: id.serviceAccount, Pod: id.pod}, nil
}

// checkPod checks that the token's pod is the one it was issued to and
// that the store selects it.
func (k *KubernetesSenders) checkPod(ctx context.Context, ds *v1alpha1.DossierStore, id tokenIdentity) error {
	storeNS, store := ds.Namespace, ds.Namespace+"/"+ds.Name
	p := &corev1.Pod{}
	switch err := k.Client.Get(ctx, client.ObjectKey{Namespace: storeNS, Name: id.pod}, p); {
	case apierrors.IsNotFound(err):
		return refuse(http.StatusForbidden, "pod %s/%s does not exist", storeNS, id.pod)
	case err != nil:
		return unavailable
	}
	if string(p.UID) != id.podUID {
		return refuse(http.StatusForbidden, "pod %s/%s is not the pod the token was issued to", storeNS, id.pod)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ds.Spec.Workload.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Labels)) {
		return refuse(http.StatusForbidden, "pod %s/%s is not selected by the spec.workload.selector of store %s", storeNS, id.pod, store)
	}
	return nil
}

// checkGatewayPod checks that the token's pod is the one it was issued to
// and carries the label of the store's egress gateway pods.
func (k *KubernetesSenders) checkGatewayPod(ctx context.Context, ds *v1alpha1.DossierStore, id tokenIdentity) error {
	p := &corev1.Pod{}
	switch err := k.Client.Get(ctx, client.ObjectKey{Namespace: ds.Namespace, Name: id.pod}, p); {
	case apierrors.IsNotFound(err):
		return refuse(http.StatusForbidden, "pod %s/%s does not exist", ds.Namespace, id.pod)
	case err != nil:
		return unavailable
	}
	if string(p.UID) != id.podUID {
		return refuse(http.StatusForbidden, "pod %s/%s is not the pod the token was issued to", ds.Namespace, id.pod)
	}
	if p.Labels[v1alpha1.LabelEgressGateway] != ds.Name {
		return refuse(http.StatusForbidden, "pod %s/%s is not labelled %s=%s as the store's egress gateway pods are", ds.Namespace, id.pod, v1alpha1.LabelEgressGateway, ds.Name)
	}
	return nil
}

// tokenIdentity is what a TokenReview says of a pod's token.
type tokenIdentity struct {
	namespace, serviceAccount, pod, podUID string
}

// review asks the API server who the token belongs to.
func (k *KubernetesSenders) review(ctx context.Context, token string) (tokenIdentity, error) {
	aud := k.audience()
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{aud}}}
	if err := k.Client.Create(ctx, tr); err != nil {
		return tokenIdentity{}, unavailable
	}
	st := tr.Status
	if !st.Authenticated || !slices.Contains(st.Audiences, aud) {
		return tokenIdentity{}, refuse(http.StatusUnauthorized, "the token is not valid for audience %s: expired, forged, or not the projected ServiceAccount token the webhook mounts", aud)
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" {
		return tokenIdentity{}, refuse(http.StatusUnauthorized, "the token is not a ServiceAccount's")
	}
	id := tokenIdentity{namespace: ns, serviceAccount: sa}
	if v := st.User.Extra[extraPodName]; len(v) == 1 {
		id.pod = v[0]
	}
	if v := st.User.Extra[extraPodUID]; len(v) == 1 {
		id.podUID = v[0]
	}
	if id.pod == "" || id.podUID == "" {
		return tokenIdentity{}, refuse(http.StatusUnauthorized, "the token of ServiceAccount %s/%s is not bound to a pod: the proxy must present the projected token the webhook mounts", ns, sa)
	}
	return id, nil
}
