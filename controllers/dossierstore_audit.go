package controllers

import (
	"context"
	"crypto/ed25519"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// reconcileAuditKeys creates the audit proxy's signing and pseudonymisation
// keys once, when a live read confirms there are none. Existing keys are
// never replaced or applied; a Secret that lost its labels or owner gets
// them back with an update of the Secret as read (optimistic locking).
func (r *DossierStoreReconciler) reconcileAuditKeys(ctx context.Context, store *v1alpha1.DossierStore) (bool, error) {
	secret, err := r.getKeySecret(ctx, store.Namespace, resources.AuditKeysName(store))
	if err != nil {
		return false, fmt.Errorf("read audit keys: %w", err)
	}
	if secret == nil {
		keys, err := resources.NewAuditKeys(nil)
		if err != nil {
			return false, err
		}
		secret = resources.NewAuditKeysSecret(store, keys)
		if err := r.Create(ctx, secret); err != nil {
			return false, fmt.Errorf("create audit keys: %w", err)
		}
		return r.publishTrustKey(ctx, store, secret)
	}
	if err := resources.CheckAuditKeys(secret.Data); err != nil {
		return false, fmt.Errorf("audit keys Secret %s is not usable (%w); it is not replaced, because older audit logs depend on it", secret.Name, err)
	}
	if adopted, changed := resources.AdoptKeySecret(secret, store, "audit-keys"); changed {
		if err := r.Update(ctx, adopted); err != nil {
			return false, fmt.Errorf("restore the audit keys Secret's labels: %w", err)
		}
	}
	return r.publishTrustKey(ctx, store, secret)
}

// publishTrustKey adds the public half of the store's checkpoint signing key
// to the trust ConfigMap in the operator's namespace, which no store owns,
// so that the store's audit logs can still be verified after the store and
// its Secret are deleted. Keys are only ever added: the ConfigMap is
// created after a live read finds none, and updated as read (optimistic
// locking), never applied. The audit keys count as ready only once their
// public key is kept.
func (r *DossierStoreReconciler) publishTrustKey(ctx context.Context, store *v1alpha1.DossierStore, secret *corev1.Secret) (bool, error) {
	priv, err := auditlog.DecodePrivateKeyPEM(secret.Data[resources.AuditSigningKey])
	if err != nil {
		return false, fmt.Errorf("audit keys Secret %s: %s: %w", secret.Name, resources.AuditSigningKey, err)
	}
	pub, _ := priv.Public().(ed25519.PublicKey)
	cm := &corev1.ConfigMap{}
	err = r.Reader.Get(ctx, client.ObjectKey{Namespace: r.TrustNamespace, Name: resources.AuditTrustName}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = resources.NewAuditTrustConfigMap(r.TrustNamespace)
	case err != nil:
		return false, fmt.Errorf("read the audit trust ConfigMap: %w", err)
	}
	next, added, err := resources.WithTrustKey(cm, store, pub)
	if err != nil {
		return false, err
	}
	switch {
	case !added:
		return true, nil
	case cm.ResourceVersion == "":
		err = r.Create(ctx, next)
	default:
		err = r.Update(ctx, next)
	}
	if err != nil {
		return false, fmt.Errorf("keep the public checkpoint key in ConfigMap %s/%s: %w", r.TrustNamespace, resources.AuditTrustName, err)
	}
	return true, nil
}

// checkAuditActive lists the workload's pods, uncached: those the store's
// selector selects and those labelled for the store. A pod counts as
// audited only when it belongs to this store alone (webhook.OwningStore),
// runs exactly the audit proxy the webhook injects (webhook.VerifyProxy)
// and has nothing that goes around it (webhook.CheckPod): the checks the
// webhook applies at admission, never a container's name.
func (r *DossierStoreReconciler) checkAuditActive(ctx context.Context, store *v1alpha1.DossierStore, transport compliance.ProxyTransport) (v1alpha1.ComplianceControl, error) {
	selector, err := metav1.LabelSelectorAsSelector(&store.Spec.Workload.Selector)
	if err != nil {
		return compliance.AuditControl(nil, 0, false, transport), fmt.Errorf("workload selector: %w", err)
	}
	selected, labelled := &corev1.PodList{}, &corev1.PodList{}
	if err := r.Reader.List(ctx, selected, client.InNamespace(store.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return compliance.AuditControl(nil, 0, false, transport), fmt.Errorf("list workload pods: %w", err)
	}
	if err := r.Reader.List(ctx, labelled, client.InNamespace(store.Namespace), client.MatchingLabels{v1alpha1.LabelStore: store.Name}); err != nil {
		return compliance.AuditControl(nil, 0, false, transport), fmt.Errorf("list workload pods: %w", err)
	}
	stores := &v1alpha1.DossierStoreList{}
	if err := r.List(ctx, stores, client.InNamespace(store.Namespace)); err != nil {
		return compliance.AuditControl(nil, 0, false, transport), fmt.Errorf("list the namespace's stores: %w", err)
	}
	seen := map[string]bool{}
	var unaudited []string
	running := 0
	for _, p := range append(selected.Items, labelled.Items...) {
		if seen[p.Name] || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || !p.DeletionTimestamp.IsZero() {
			continue
		}
		seen[p.Name] = true
		running++
		if !audited(&p, store, stores.Items, r.AuditProxy) {
			unaudited = append(unaudited, p.Name)
		}
	}
	return compliance.AuditControl(unaudited, running, true, transport), nil
}

// audited applies the webhook's admission checks to a running pod.
func audited(pod *corev1.Pod, store *v1alpha1.DossierStore, stores []v1alpha1.DossierStore, cfg webhook.Config) bool {
	owner, err := webhook.OwningStore(pod, stores)
	if err != nil || owner == nil || owner.Name != store.Name {
		return false
	}
	return len(webhook.VerifyProxy(pod, store, cfg)) == 0 && len(webhook.CheckPod(pod, store, cfg)) == 0
}
