package controllers

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// reconcileAuditKeys keeps the audit proxy's two key Secrets: the
// versioned checkpoint signing keys (<store>-audit-signing) and the
// pseudonymisation key (<store>-pseudonym). Each is created once, when a
// live read confirms there is none, and never replaced or applied: a
// rotation adds a signing-key version with an update of the Secret as read
// (optimistic locking), after its public key is kept in the trust
// ConfigMap. A store made before the split has one Secret with both keys
// (<store>-audit-keys): its keys are copied unchanged into the two Secrets,
// and it is removed once they hold them and no pod mounts it any more.
func (r *DossierStoreReconciler) reconcileAuditKeys(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) (compliance.AuditKeyFacts, error) {
	facts := compliance.AuditKeyFacts{SigningSecret: resources.AuditSigningName(store), PseudonymSecret: resources.PseudonymName(store)}
	fail := func(problem string, err error) (compliance.AuditKeyFacts, error) {
		facts.Failed, facts.Problem = true, problem
		return facts, err
	}
	legacyName := resources.LegacyAuditKeysName(store)
	legacy, err := r.findLegacyAuditKeys(ctx, store)
	if err != nil {
		return fail("Secret "+legacyName+" could not be read", fmt.Errorf("read audit keys: %w", err))
	}
	var fromLegacy resources.SigningRing
	var legacyPseudonym []byte
	if legacy != nil {
		if fromLegacy, legacyPseudonym, err = resources.SplitLegacyAuditKeys(legacy); err != nil {
			return fail("Secret "+legacyName+" holds no usable keys",
				fmt.Errorf("audit keys Secret %s is not usable (%w); it is not replaced, because older audit logs depend on it", legacyName, err))
		}
	}
	pseudonym, err := r.reconcilePseudonymKey(ctx, store, legacyPseudonym)
	if err != nil {
		return fail("the pseudonym key in Secret "+facts.PseudonymSecret+" could not be kept", err)
	}
	ring, err := r.reconcileSigningKeys(ctx, store, fromLegacy, now)
	if err != nil {
		return fail("the signing keys in Secret "+facts.SigningSecret+" could not be kept, rotated or trusted", err)
	}
	active := ring.Active(now)
	if active == nil { // every version retired: a Secret edited by hand
		return fail("no version in Secret "+facts.SigningSecret+" has its private key",
			fmt.Errorf("signing Secret %s: no version has its private key (signing-N.key); it is not replaced, because older audit logs depend on it", facts.SigningSecret))
	}
	facts.KeyID, facts.Version, facts.Created, facts.Versions = active.ID(), active.Version, active.Created, len(ring.Versions)
	facts.NextRotation = ring.NextRotation(store.Spec.Audit.SigningKeyRotationPeriod())
	if n := ring.Newest(); n.Version != active.Version {
		facts.PendingKeyID, facts.PendingActiveFrom = n.ID(), n.ActiveFrom
	}
	if _, err := applyChild(ctx, r.Client, resources.PseudonymReaderRole(store), &rbacv1.Role{}); err != nil {
		return fail("Role "+resources.PseudonymReaderName(store)+" could not be applied", fmt.Errorf("apply pseudonym reader Role: %w", err))
	}
	// The keys in use are in place; an old Secret that cannot be removed
	// yet is reported, and tried again, without failing them.
	if legacy != nil {
		return facts, r.removeLegacyAuditKeys(ctx, legacy, ring, pseudonym)
	}
	return facts, nil
}

// findLegacyAuditKeys reads a store's legacy audit-keys Secret, nil when
// there is none. Until both split Secrets exist it asks the API server when
// the cache has none (getKeySecret): an unlabelled legacy Secret must never
// be missed, or new keys would be made in place of its keys. Once both
// exist, the legacy Secret can change no key any more, and the cache alone
// is asked (it holds the legacy Secret the operator made, which carries its
// labels), so that a converged store costs no extra request.
func (r *DossierStoreReconciler) findLegacyAuditKeys(ctx context.Context, store *v1alpha1.DossierStore) (*corev1.Secret, error) {
	name := resources.LegacyAuditKeysName(store)
	split := true
	for _, n := range []string{resources.AuditSigningName(store), resources.PseudonymName(store)} {
		err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: n}, &corev1.Secret{})
		split = split && err == nil
	}
	if !split {
		return r.getKeySecret(ctx, store.Namespace, name)
	}
	secret := &corev1.Secret{}
	switch err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: name}, secret); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return secret, nil
}

// reconcilePseudonymKey creates the pseudonym Secret once, with the legacy
// Secret's key when there is one (fromLegacy), or a new key, where none
// exists (keySecret); it returns the key kept. The key is never rotated.
func (r *DossierStoreReconciler) reconcilePseudonymKey(ctx context.Context, store *v1alpha1.DossierStore, fromLegacy []byte) ([]byte, error) {
	name := resources.PseudonymName(store)
	secret, err := r.keySecret(ctx, store.Namespace, name, func() (*corev1.Secret, error) {
		if fromLegacy != nil {
			return resources.NewPseudonymSecret(store, fromLegacy), nil
		}
		key, err := resources.NewPseudonymKey(nil)
		return resources.NewPseudonymSecret(store, key), err
	})
	if err != nil {
		return nil, fmt.Errorf("read or create pseudonym key: %w", err)
	}
	if err := resources.CheckPseudonymSecret(secret.Data); err != nil {
		return nil, fmt.Errorf("pseudonym Secret %s is not usable (%w); it is not replaced, because the audit log's pseudonyms depend on it", name, err)
	}
	key := secret.Data[resources.PseudonymKey]
	if fromLegacy != nil && !bytes.Equal(fromLegacy, key) {
		return nil, fmt.Errorf("the Secrets %s and %s hold different pseudonym keys; neither is changed: decide which one the audit log used", name, resources.LegacyAuditKeysName(store))
	}
	if adopted, changed := resources.AdoptKeySecret(secret, store, "pseudonym"); changed {
		if err := r.Update(ctx, adopted); err != nil {
			return nil, fmt.Errorf("restore the pseudonym Secret's labels: %w", err)
		}
	}
	return key, nil
}

// reconcileSigningKeys creates the signing Secret once (with the legacy
// Secret's key as version 1 when there is one), adds a version when one is
// due or asked for (v1alpha1.AnnotationRotateSigningKey), and returns the
// versions kept; the private keys of versions before the active one are
// removed SigningKeyRetireDelay after it became active. Every version's
// public key is kept in the trust ConfigMap
// before the version is written, so the proxy never signs with a key the
// verifiers cannot know; a key kept whose Secret write then failed was
// never used, and harms no verification.
func (r *DossierStoreReconciler) reconcileSigningKeys(ctx context.Context, store *v1alpha1.DossierStore, fromLegacy resources.SigningRing, now time.Time) (resources.SigningRing, error) {
	name := resources.AuditSigningName(store)
	secret, err := r.getKeySecret(ctx, store.Namespace, name)
	if err != nil {
		return resources.SigningRing{}, fmt.Errorf("read signing keys: %w", err)
	}
	if secret == nil {
		return r.createSigningKeys(ctx, store, fromLegacy, now)
	}
	ring, err := resources.ReadSigningRing(secret)
	if err != nil {
		return resources.SigningRing{}, fmt.Errorf("signing Secret %s is not usable (%w); it is not replaced, because older audit logs depend on it", name, err)
	}
	if len(fromLegacy.Versions) > 0 && !ring.Has(fromLegacy.Versions[0].Key) {
		return resources.SigningRing{}, fmt.Errorf("signing Secret %s lacks the signing key of Secret %s; neither is changed", name, resources.LegacyAuditKeysName(store))
	}
	if err := r.publishTrustKeys(ctx, store, ring.PublicKeys()); err != nil {
		return resources.SigningRing{}, err
	}
	updated, changed := resources.AdoptKeySecret(secret, store, "audit-signing")
	// The private keys of versions no proxy signs with any more go; their
	// public keys stay.
	if retire := ring.Retirable(now); len(retire) > 0 {
		updated, ring, changed = resources.WithRetiredKeys(updated, retire), ring.WithRetired(retire), true
	}
	if !now.Before(ring.NextRotation(store.Spec.Audit.SigningKeyRotationPeriod())) || resources.RotationRequested(store, secret) {
		return r.rotateSigningKeys(ctx, store, updated, ring, now)
	}
	if changed {
		if err := r.Update(ctx, updated); err != nil {
			return resources.SigningRing{}, fmt.Errorf("update signing Secret %s: %w", name, err)
		}
	}
	return ring, nil
}

// createSigningKeys creates the signing Secret with the legacy Secret's key
// as version 1, or a new key, after its public key is kept.
func (r *DossierStoreReconciler) createSigningKeys(ctx context.Context, store *v1alpha1.DossierStore, fromLegacy resources.SigningRing, now time.Time) (resources.SigningRing, error) {
	ring := fromLegacy
	if len(ring.Versions) == 0 {
		var err error
		if ring, _, err = ring.Rotate(now, nil); err != nil {
			return resources.SigningRing{}, err
		}
	}
	if err := r.publishTrustKeys(ctx, store, ring.PublicKeys()); err != nil {
		return resources.SigningRing{}, err
	}
	created, err := resources.NewSigningSecret(store, ring)
	if err != nil {
		return resources.SigningRing{}, err
	}
	if err := r.Create(ctx, resources.WithRotationHonoured(created, store)); err != nil {
		return resources.SigningRing{}, fmt.Errorf("create signing keys: %w", err)
	}
	return ring, nil
}

// rotateSigningKeys adds a version to the signing Secret as read (secret,
// with its resourceVersion, so that a write made since conflicts), after
// the version's public key is kept, and records the store's rotation
// request as honoured.
func (r *DossierStoreReconciler) rotateSigningKeys(ctx context.Context, store *v1alpha1.DossierStore, secret *corev1.Secret, ring resources.SigningRing, now time.Time) (resources.SigningRing, error) {
	next, v, err := ring.Rotate(now, nil)
	if err != nil {
		return resources.SigningRing{}, err
	}
	if err := r.publishTrustKeys(ctx, store, []ed25519.PublicKey{v.Public()}); err != nil {
		return resources.SigningRing{}, err
	}
	updated, err := resources.WithSigningVersion(secret, v)
	if err != nil {
		return resources.SigningRing{}, err
	}
	if err := r.Update(ctx, resources.WithRotationHonoured(updated, store)); err != nil {
		return resources.SigningRing{}, fmt.Errorf("add signing-key version %d to Secret %s: %w", v.Version, secret.Name, err)
	}
	return next, nil
}

// removeLegacyAuditKeys deletes the legacy audit-keys Secret once the split
// Secrets hold its keys unchanged and no pod of the namespace mounts it
// (pods injected before the split keep it until they are replaced). The
// delete is conditional on the Secret as read.
func (r *DossierStoreReconciler) removeLegacyAuditKeys(ctx context.Context, legacy *corev1.Secret, ring resources.SigningRing, pseudonym []byte) error {
	if !resources.LegacyKeysKept(legacy, ring, pseudonym) {
		return fmt.Errorf("the split Secrets do not hold the keys of Secret %s; it is kept", legacy.Name)
	}
	pods := &corev1.PodList{}
	if err := r.Reader.List(ctx, pods, client.InNamespace(legacy.Namespace)); err != nil {
		return fmt.Errorf("list pods that may mount Secret %s: %w", legacy.Name, err)
	}
	for i := range pods.Items {
		if webhook.MountsSecret(&pods.Items[i], legacy.Name) {
			return nil
		}
	}
	uid, rv := legacy.UID, legacy.ResourceVersion
	err := r.Delete(ctx, legacy, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove Secret %s: %w", legacy.Name, err)
	}
	return nil
}

// publishTrustKeys adds public checkpoint keys of the store to the trust
// ConfigMap in the operator's namespace, which no store owns, so that the
// store's audit logs can still be verified after the store and its Secrets
// are deleted. Keys are only ever added: the ConfigMap is created after a
// live read finds none, and updated as read (optimistic locking), never
// applied. Every store writes this one ConfigMap, so the keys of the stores
// reconciled at the same time are written together (trustWrites), and a
// write that lost the race to another writer's (a conflict, or a create
// after another's) is read and tried again at once rather than failing the
// reconciles. The ConfigMap holds every store's keys, so it is read from
// the API server only when the cached copy lacks one of this store's keys:
// keys are only ever added, and a reconcile that finds its keys kept (every
// reconcile after the first) reads nothing live.
func (r *DossierStoreReconciler) publishTrustKeys(ctx context.Context, store *v1alpha1.DossierStore, pubs []ed25519.PublicKey) error {
	if r.trustKeysCached(ctx, store, pubs) {
		return nil
	}
	if err := r.trustWrites.publish(ctx, trustRequest{store: store, pubs: pubs}, r.writeTrustKeys); err != nil {
		return fmt.Errorf("keep the public checkpoint keys in ConfigMap %s/%s: %w", r.TrustNamespace, resources.AuditTrustName, err)
	}
	return nil
}

// writeTrustKeys keeps the keys of every request in the trust ConfigMap
// with one write, tried again at once after a lost race; one outcome per
// request.
func (r *DossierStoreReconciler) writeTrustKeys(ctx context.Context, reqs []trustRequest) []error {
	lostRace := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	var refused []error
	err := retry.OnError(retry.DefaultRetry, lostRace, func() error {
		var err error
		refused, err = r.addTrustKeys(ctx, reqs)
		return err
	})
	out := make([]error, len(reqs))
	for i := range reqs {
		switch {
		case err != nil:
			out[i] = err
		case refused[i] != nil:
			out[i] = refused[i]
		}
	}
	return out
}

// trustKeysCached says whether the cached trust ConfigMap holds every key
// of pubs for the store. The ConfigMap holds every store's keys and is only
// read here, so the cache's own copy is read, not a copy of it for every
// reconcile.
func (r *DossierStoreReconciler) trustKeysCached(ctx context.Context, store *v1alpha1.DossierStore, pubs []ed25519.PublicKey) bool {
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: r.TrustNamespace, Name: resources.AuditTrustName}, cm, client.UnsafeDisableDeepCopy); err != nil {
		return false
	}
	for _, pub := range pubs {
		if !resources.HoldsTrustKey(cm, store, pub) {
			return false
		}
	}
	return true
}

// addTrustKeys is one read and, when a key is missing, one write of the
// trust ConfigMap, with the keys of every request that can be kept; it
// returns why each request's keys cannot be kept, and the error of the read
// or the write.
func (r *DossierStoreReconciler) addTrustKeys(ctx context.Context, reqs []trustRequest) ([]error, error) {
	cm := &corev1.ConfigMap{}
	err := r.Reader.Get(ctx, client.ObjectKey{Namespace: r.TrustNamespace, Name: resources.AuditTrustName}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = resources.NewAuditTrustConfigMap(r.TrustNamespace)
	case err != nil:
		return nil, fmt.Errorf("read the audit trust ConfigMap: %w", err)
	}
	next, changed, refused := withTrustKeys(cm, reqs)
	switch {
	case !changed:
		return refused, nil
	case cm.ResourceVersion == "":
		return refused, r.Create(ctx, next)
	default:
		return refused, r.Update(ctx, next)
	}
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
	pods := runningPods(selected.Items, labelled.Items)
	if len(pods) == 0 {
		return compliance.AuditControl(nil, 0, true, transport), nil
	}
	// Which store a pod belongs to depends on every store of the namespace.
	// They are only read (webhook.OwningStore), so the cache's own copies
	// do: a copy of every store for every store's reconcile grows with the
	// square of the stores of a namespace.
	stores := &v1alpha1.DossierStoreList{}
	if err := r.List(ctx, stores, client.InNamespace(store.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return compliance.AuditControl(nil, 0, false, transport), fmt.Errorf("list the namespace's stores: %w", err)
	}
	var unaudited []string
	for _, p := range pods {
		if !audited(p, store, stores.Items, r.AuditProxy) {
			unaudited = append(unaudited, p.Name)
		}
	}
	return compliance.AuditControl(unaudited, len(pods), true, transport), nil
}

// runningPods are the pods of the lists, each once, that have neither
// finished nor begun to terminate.
func runningPods(lists ...[]corev1.Pod) []*corev1.Pod {
	seen := map[string]bool{}
	var out []*corev1.Pod
	for _, list := range lists {
		for i := range list {
			p := &list[i]
			if seen[p.Name] || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || !p.DeletionTimestamp.IsZero() {
				continue
			}
			seen[p.Name] = true
			out = append(out, p)
		}
	}
	return out
}

// audited applies the webhook's admission checks to a running pod.
func audited(pod *corev1.Pod, store *v1alpha1.DossierStore, stores []v1alpha1.DossierStore, cfg webhook.Config) bool {
	owner, err := webhook.OwningStore(pod, stores)
	if err != nil || owner == nil || owner.Name != store.Name {
		return false
	}
	return len(webhook.VerifyProxy(pod, store, cfg)) == 0 && len(webhook.CheckPod(pod, store, cfg)) == 0
}
