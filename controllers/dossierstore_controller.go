package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/metrics"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// auditRecheck bounds how long an unaudited workload pod goes unnoticed;
// certRecheck is how soon a serving certificate cert-manager has not issued
// yet is looked for again.
const (
	auditRecheck = 10 * time.Minute
	certRecheck  = 10 * time.Second
)

// storageClassIndex indexes stores by the StorageClass they name.
const storageClassIndex = "spec.storage.storageClassName"

// DossierStoreReconciler provisions a store's encrypted volume, data key,
// key access and network isolation, and reports compliance.
type DossierStoreReconciler struct {
	client.Client
	// Reader lists the workload's pods without caching every pod.
	Reader   client.Reader
	Recorder recorder.EventRecorder
	// Clock is injectable so that tests can move time for key rotation.
	Clock clock.PassiveClock
	// AuditProxy is what the webhook injects; AuditActive checks pods
	// against it.
	AuditProxy webhook.Config
	// Certs issues the audit proxies' serving certificates with the
	// operator's CA; ProxyIssuer, when set, has cert-manager issue them.
	Certs       ServingCertIssuer
	ProxyIssuer *ProxyIssuerRef
	// TrustNamespace holds the ConfigMap that keeps every public
	// checkpoint key of every store (publishTrustKey).
	TrustNamespace string
	// Reports are the compliance reports kept for each store.
	Reports ReportKinds
	// Isolation adds the installation's rules (the logbook, the proxies'
	// metrics) to every store's isolation policy.
	Isolation resources.IsolationExtras
	// EgressTokenReviewRole is the installation's ClusterRole that may
	// create TokenReviews; each store's egress gateway is bound to it.
	// Empty binds nothing, and the gateways cannot verify their callers
	// (they refuse every request with 503).
	EgressTokenReviewRole string
	// EgressReplicas is how many pods each store's egress gateway runs
	// (resources.DefaultEgressReplicas when 0); with more than one, a
	// PodDisruptionBudget lets them go one at a time.
	EgressReplicas int32

	// trustWrites gathers the public checkpoint keys of the stores
	// reconciled at the same time into one write of the trust ConfigMap.
	trustWrites trustWrites
	// endpoints is the last read of the API server's endpoints, which
	// every store's isolation policy admits.
	endpoints apiServerEndpoints
}

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=dossierstores,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=dossierstores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=dossierstores/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one DossierStore to its desired state.
func (r *DossierStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	store := &v1alpha1.DossierStore{}
	if err := r.Get(ctx, req.NamespacedName, store); err != nil {
		return ctrl.Result{}, forgetIfGone(metrics.KindDossierStore, req, err)
	}
	if !store.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, store)
	}
	// The finalizer goes on before any child exists, so that no volume is
	// ever created that deletion could not account for. The update does not
	// change the generation, so the reconcile goes on with the fresh object.
	if controllerutil.AddFinalizer(store, v1alpha1.StoreFinalizer) {
		if err := r.Update(ctx, store); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := store.DeepCopy()
	now := r.Clock.Now()
	facts := storeFacts{now: now}
	var errs []error
	for _, step := range r.storeSteps() {
		errs = append(errs, step(ctx, store, &facts))
	}

	setStoreStatus(store, facts)
	metrics.RecordStore(store)
	written, statusErr := writeStatus(ctx, r.Client, store, before.Status, store.Status)
	if written {
		r.recordTransitions(before, store)
	}
	if statusErr == nil {
		_, err := syncReports(ctx, r.Client, r.Reports, reportSubject(metrics.KindDossierStore, store, store.Name, &store.Status.CommonStatus))
		errs = append(errs, err)
	}
	return finish(requeueFor(r.nextStoreLook(facts, now), now), statusErr, errs...)
}

// nextStoreLook is when the store must be looked at again, whatever
// happens in between: the soonest of the pod recheck, a key rotation, a
// signing key taking over, a request's deadline and a pending certificate.
func (r *DossierStoreReconciler) nextStoreLook(facts storeFacts, now time.Time) time.Time {
	// Look again at least every auditRecheck for workload pods that escaped
	// the webhook (pods are not watched, to keep the cache small).
	next := now.Add(auditRecheck)
	// The next key rotation, and the moment a new signing key takes over
	// (the status shows it), come sooner.
	for _, t := range []time.Time{facts.key.NextRotation, facts.auditKeys.NextRotation, facts.auditKeys.PendingActiveFrom} {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	// A request's deadline passing fails DataSubjectRights at that moment.
	if n := facts.requestsNext; !n.IsZero() && n.Before(next) {
		next = n
	}
	// A serving certificate cert-manager has yet to issue: look again soon.
	if facts.transport.TLS && !facts.transport.Issued && r.ProxyIssuer != nil {
		next = now.Add(certRecheck)
	}
	return next
}

// storeStep is one step of a store's reconcile: it records what it found
// and did in the facts. Its error is reported, but the later steps run all
// the same, so that the status describes every control.
type storeStep func(ctx context.Context, store *v1alpha1.DossierStore, f *storeFacts) error

// storeSteps are the steps of a store's reconcile, in order; a new step is
// added here and nowhere else.
func (r *DossierStoreReconciler) storeSteps() []storeStep {
	return []storeStep{
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) error {
			f.encryption = r.reconcileEncryption(ctx, s)
			return nil
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.key, err = r.reconcileDataKey(ctx, s, f.now)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.keyAccess, err = r.reconcileWorkloadAccess(ctx, s)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.claim, err = r.reconcileClaim(ctx, s, f.encryption)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.isolation, f.apiServer, err = r.reconcileIsolation(ctx, s)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.roles, f.policyApplied, err = r.reconcileAccessPolicy(ctx, s, f.now)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.agreements, f.violating, f.proxied, err = r.summariseAgreements(ctx, s, f.now)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.retention, err = r.summariseRetention(ctx, s)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.auditKeys, err = r.reconcileAuditKeys(ctx, s, f.now)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.transport, err = r.reconcileProxyTLS(ctx, s, f.now)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.audit, err = r.checkAuditActive(ctx, s, f.transport)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.requests, f.requestsNext, f.unfilterable, err = r.summariseRequests(ctx, s, f.now)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.activities, err = r.listActivityNames(ctx, s)
			return err
		},
		func(ctx context.Context, s *v1alpha1.DossierStore, f *storeFacts) (err error) {
			f.egress, err = r.reconcileEgressGateway(ctx, s, f.now)
			return err
		},
	}
}

// listActivityNames reads the names of the ProcessingActivities of the
// store's namespace, which its routes may name; nil when they cannot be
// read.
func (r *DossierStoreReconciler) listActivityNames(ctx context.Context, store *v1alpha1.DossierStore) (map[string]bool, error) {
	list := &v1alpha1.ProcessingActivityList{}
	if err := r.List(ctx, list, client.InNamespace(store.Namespace)); err != nil {
		return nil, fmt.Errorf("list processing activities: %w", err)
	}
	known := make(map[string]bool, len(list.Items))
	for _, a := range list.Items {
		known[a.Name] = true
	}
	return known, nil
}

// reconcileEncryption verifies the StorageClass; it never writes.
func (r *DossierStoreReconciler) reconcileEncryption(ctx context.Context, store *v1alpha1.DossierStore) compliance.Encryption {
	name := store.Spec.Storage.StorageClassName
	class := &storagev1.StorageClass{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, class); err != nil {
		if !apierrors.IsNotFound(err) {
			log.FromContext(ctx).Error(err, "Reading the StorageClass failed", "storageClass", name)
		}
		return compliance.VerifyStorageClass(name, nil)
	}
	return compliance.VerifyStorageClass(name, class)
}

// reconcileDataKey creates the data key once, or adds a version when the
// current one has expired. The Secret is never applied or overwritten: it
// is created only where none exists (keySecret), and a new version is an
// update of the Secret as read, with its resourceVersion, that keeps every
// existing version, so that a stale read conflicts instead of losing a
// version. Key material never leaves this function but to the API.
func (r *DossierStoreReconciler) reconcileDataKey(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) (compliance.KeyFacts, error) {
	facts := compliance.KeyFacts{Secret: resources.KeySecretName(store)}
	period := keyRotationPeriod(store)
	secret, err := r.keySecret(ctx, store.Namespace, facts.Secret, func() (*corev1.Secret, error) {
		ring, err := resources.KeyRing{}.Rotate(now, nil)
		return resources.NewDataKeySecret(store, ring), err
	})
	if err != nil {
		facts.Failed = true
		return facts, fmt.Errorf("read or create data key: %w", err)
	}
	ring, err := resources.ReadKeyRing(secret)
	if err != nil {
		// A damaged key Secret is never overwritten: older versions may
		// still be needed to decrypt dossiers.
		facts.Failed = true
		return facts, fmt.Errorf("data key Secret %s: %w", facts.Secret, err)
	}
	next := ring
	if ring.NeedsRotation(now, period) {
		if next, err = ring.Rotate(now, nil); err != nil {
			facts.Failed = true
			return facts, err
		}
	}
	if err := r.writeDataKey(ctx, store, secret, len(ring.Versions), next); err != nil {
		facts.Failed = true
		return facts, err
	}
	current := next.Current()
	facts.Version, facts.Versions, facts.NextRotation = current.Version, len(next.Versions), next.NextRotation(period)
	return facts, nil
}

// writeDataKey updates the data-key Secret as read when next has a version
// more than the read's had or the Secret lost its labels: with the read's
// resourceVersion, so that a write made since conflicts.
func (r *DossierStoreReconciler) writeDataKey(ctx context.Context, store *v1alpha1.DossierStore, secret *corev1.Secret, had int, next resources.KeyRing) error {
	updated, adopted := resources.AdoptKeySecret(secret, store, "data-key")
	rotated := len(next.Versions) > had
	if rotated {
		updated = resources.WithKeyVersion(updated, *next.Current())
	}
	if !adopted && !rotated {
		return nil
	}
	if err := r.Update(ctx, updated); err != nil {
		return fmt.Errorf("add data key version %d: %w", next.Current().Version, err)
	}
	return nil
}

// getKeySecret reads a Secret that holds keys, nil when it does not exist.
// The cache holds only Secrets with dossierguard's managed-by label
// (CacheOptions), so when the cache has none the API server is asked: a key
// Secret whose label was taken off must never be taken for a missing one
// and replaced with new keys; only a live NotFound means it does not exist.
// The reconcile then puts the label back (AdoptKeySecret).
func (r *DossierStoreReconciler) getKeySecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		err = r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return secret, nil
}

// keySecret is the key Secret named name as it stands: from the cache, or,
// when the cache has none, the Secret made by create, created where none
// exists. A create never overwrites, so it takes the place of the live read
// that getKeySecret makes: only when the API server says the Secret exists
// already (its label was taken off, or the cache has not seen it yet) is it
// read live, and that Secret is kept, never replaced. create's keys are
// then dropped unused.
func (r *DossierStoreReconciler) keySecret(ctx context.Context, namespace, name string, create func() (*corev1.Secret, error)) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret)
	switch {
	case err == nil:
		return secret, nil
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	made, err := create()
	if err != nil {
		return nil, err
	}
	err = r.Create(ctx, made)
	switch {
	case err == nil:
		return made, nil
	case !apierrors.IsAlreadyExists(err):
		return nil, err
	}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret); err != nil {
		return nil, err
	}
	return secret, nil
}

// reconcileWorkloadAccess grants the workload's ServiceAccount what it may
// do through the API, reading the data key and watching the namespace's
// DataSubjectRequests, in one Role and RoleBinding, and then removes the two
// pairs that granted the same one each before (LegacyWorkloadAccessNames).
func (r *DossierStoreReconciler) reconcileWorkloadAccess(ctx context.Context, store *v1alpha1.DossierStore) (bool, error) {
	if _, err := applyChild(ctx, r.Client, resources.WorkloadAccessRole(store), &rbacv1.Role{}); err != nil {
		return false, fmt.Errorf("apply the workload's Role: %w", err)
	}
	if _, err := applyChild(ctx, r.Client, resources.WorkloadAccessBinding(store), &rbacv1.RoleBinding{}); err != nil {
		return false, fmt.Errorf("apply the workload's RoleBinding: %w", err)
	}
	for _, name := range resources.LegacyWorkloadAccessNames(store) {
		if err := r.deleteOwned(ctx, store, name, &rbacv1.RoleBinding{}); err != nil {
			return false, err
		}
		if err := r.deleteOwned(ctx, store, name, &rbacv1.Role{}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// deleteOwned deletes the store's child of obj's type named name, when the
// cache has one that the store controls; none is no write.
func (r *DossierStoreReconciler) deleteOwned(ctx context.Context, store *v1alpha1.DossierStore, name string, obj client.Object) error {
	err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read %T %s: %w", obj, name, err)
	}
	if !metav1.IsControlledBy(obj, store) {
		return nil
	}
	uid := obj.GetUID()
	if err := r.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %T %s: %w", obj, name, err)
	}
	return nil
}

// reconcileClaim creates or grows the dossier volume, only on a class that
// encrypts at rest. An existing claim is never removed here.
func (r *DossierStoreReconciler) reconcileClaim(ctx context.Context, store *v1alpha1.DossierStore, encryption compliance.Encryption) (bool, error) {
	if !encryption.Encrypted() {
		return false, nil
	}
	if _, err := applyChild(ctx, r.Client, resources.DossierClaim(store), &corev1.PersistentVolumeClaim{}); err != nil {
		return false, fmt.Errorf("apply dossier volume claim: %w", err)
	}
	return true, nil
}

// reconcileIsolation applies the default-deny NetworkPolicy, with egress
// to the API server's endpoints (read live from the EndpointSlices of
// default/kubernetes, not cached, one read shared by the reconciles of
// endpointsFresh), where the audit proxy watches the
// store's DataSubjectRequests. Without endpoints the policy admits no API
// server rather than every destination; the proxy then cannot sync and
// refuses every request for a dossier (apiServer false). When the
// endpoints cannot be read, a policy that exists stays as it was (and is
// not reported applied), and a store without one gets it without the API
// server: the workload is never left without isolation. The policy that
// used to admit the API server on its own is removed.
func (r *DossierStoreReconciler) reconcileIsolation(ctx context.Context, store *v1alpha1.DossierStore) (applied, apiServer bool, err error) {
	endpoints, err := r.endpoints.get(ctx, r.Reader, time.Now())
	if err != nil {
		listErr := err
		existing := &networkingv1.NetworkPolicy{}
		switch err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.IsolationPolicyName(store)}, existing); {
		case err == nil:
			return false, false, listErr
		case !apierrors.IsNotFound(err):
			return false, false, errors.Join(listErr, fmt.Errorf("read isolation NetworkPolicy: %w", err))
		}
		if _, err := applyChild(ctx, r.Client, resources.IsolationPolicy(store, r.Isolation, nil), &networkingv1.NetworkPolicy{}); err != nil {
			return false, false, errors.Join(listErr, fmt.Errorf("apply isolation NetworkPolicy: %w", err))
		}
		return true, false, listErr
	}
	if _, err := applyChild(ctx, r.Client, resources.IsolationPolicy(store, r.Isolation, endpoints), &networkingv1.NetworkPolicy{}); err != nil {
		return false, false, fmt.Errorf("apply isolation NetworkPolicy: %w", err)
	}
	if err := r.deleteOwned(ctx, store, resources.LegacyAPIServerPolicyName(store), &networkingv1.NetworkPolicy{}); err != nil {
		return true, false, err
	}
	return true, len(endpoints) > 0, nil
}

// reconcileDelete releases the dossier volume unless the store says to
// delete it, then lets the store go. Dossiers are never deleted silently.
func (r *DossierStoreReconciler) reconcileDelete(ctx context.Context, store *v1alpha1.DossierStore) error {
	if !controllerutil.ContainsFinalizer(store, v1alpha1.StoreFinalizer) {
		return nil
	}
	if store.Spec.Storage.DeletionPolicy != v1alpha1.DeletionDelete {
		released, err := r.releaseClaim(ctx, store)
		if err != nil {
			return err
		}
		if released {
			r.Recorder.Eventf(store, nil, corev1.EventTypeNormal, "DossierVolumeRetained", "Delete",
				"PersistentVolumeClaim %s is retained after the store was deleted; see the README on releasing it", resources.ClaimName(store))
		}
	}
	// The gateway's TokenReview binding is cluster-scoped, so no owner
	// reference takes it away with the store.
	if err := r.removeEgressTokenReviewBinding(ctx, store); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(store, v1alpha1.StoreFinalizer)
	return client.IgnoreNotFound(r.Update(ctx, store))
}

// releaseClaim removes the store's owner reference from the claim so that
// garbage collection keeps it, and marks where it came from.
func (r *DossierStoreReconciler) releaseClaim(ctx context.Context, store *v1alpha1.DossierStore) (bool, error) {
	claim := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.ClaimName(store)}, claim)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read dossier volume claim: %w", err)
	}
	patch := client.MergeFrom(claim.DeepCopy())
	owners := claim.OwnerReferences[:0]
	for _, o := range claim.OwnerReferences {
		if o.UID != store.UID {
			owners = append(owners, o)
		}
	}
	claim.OwnerReferences = owners
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	claim.Annotations[v1alpha1.AnnotationRetained] = store.Name
	if err := r.Patch(ctx, claim, patch); err != nil {
		return false, fmt.Errorf("release dossier volume claim: %w", err)
	}
	log.FromContext(ctx).Info("Retained the dossier volume of a deleted store", "claim", klog.KObj(claim))
	return true, nil
}

// SetupWithManager registers the reconciler, its watches and its index.
func (r *DossierStoreReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.DossierStore{}, storageClassIndex,
		func(o client.Object) []string {
			return []string{o.(*v1alpha1.DossierStore).Spec.Storage.StorageClassName}
		}); err != nil {
		return err
	}
	return ownReports(ctrl.NewControllerManagedBy(mgr), r.Reports).
		// The store's own status writes do not trigger it again; its
		// finalizer taken off does.
		For(&v1alpha1.DossierStore{}, builder.WithPredicates(predicate.Or(specMetadataOrDeletion, storeFinalizerRemoved))).
		// A claim's status (binding, resizing) is not read.
		Owns(&corev1.PersistentVolumeClaim{}, builder.WithPredicates(notStatusOnly)).
		// Secrets and ConfigMaps are cached only with the managed-by label
		// (CacheOptions), so these two watches see only dossierguard's own.
		// They, Roles, RoleBindings and NetworkPolicies have no status:
		// every update is an edit to revert, so they are not filtered.
		Owns(&corev1.Secret{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&corev1.ConfigMap{}).
		// The egress gateway: its Deployment's availability is read for
		// EgressGated; the rest have no status the store reads.
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}, builder.WithPredicates(notStatusOnly)).
		Owns(&corev1.ServiceAccount{}).
		Owns(&policyv1.PodDisruptionBudget{}, builder.WithPredicates(notStatusOnly)).
		// A StorageClass has no status; its annotations attest encryption.
		Watches(&storagev1.StorageClass{}, handler.EnqueueRequestsFromMapFunc(r.storesUsingClass)).
		// The store reads a role's spec only, never its status.
		Watches(&v1alpha1.AccessRole{}, handler.EnqueueRequestsFromMapFunc(toStore),
			builder.WithPredicates(specMetadataOrDeletion)).
		// Of an agreement's status the store reads whether it is in force, and why.
		Watches(&v1alpha1.SharingAgreement{}, handler.EnqueueRequestsFromMapFunc(toStore),
			builder.WithPredicates(predicate.Or(specMetadataOrDeletion, agreementOutcomeChanged))).
		// Of a policy's status the store reads its RetentionEnforced outcome.
		Watches(&v1alpha1.RetentionPolicy{}, handler.EnqueueRequestsFromMapFunc(toStore),
			builder.WithPredicates(predicate.Or(specMetadataOrDeletion, retentionOutcomeChanged))).
		// The store assesses its requests from their specs.
		Watches(&v1alpha1.DataSubjectRequest{}, handler.EnqueueRequestsFromMapFunc(toStore),
			builder.WithPredicates(specMetadataOrDeletion)).
		// The access policy carries each named activity's register ID.
		Watches(&v1alpha1.ProcessingActivity{}, handler.EnqueueRequestsFromMapFunc(inNamespace(mgr.GetClient(), &v1alpha1.DossierStoreList{})),
			builder.WithPredicates(specMetadataOrDeletion)).
		Named("dossierstore").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// storesUsingClass maps a StorageClass to the stores that name it.
func (r *DossierStoreReconciler) storesUsingClass(ctx context.Context, class client.Object) []reconcile.Request {
	stores := &v1alpha1.DossierStoreList{}
	if err := r.List(ctx, stores, client.MatchingFields{storageClassIndex: class.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Listing the stores of a StorageClass failed", "storageClass", class.GetName())
		return nil
	}
	requests := make([]reconcile.Request, 0, len(stores.Items))
	for _, s := range stores.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return requests
}

// keyRotationPeriod parses the validated period, 90 days by default.
func keyRotationPeriod(store *v1alpha1.DossierStore) time.Duration {
	if d, err := time.ParseDuration(store.Spec.Encryption.KeyRotationPeriod); err == nil && d > 0 {
		return d
	}
	return 90 * 24 * time.Hour
}

// requeueFor is how long to wait until t, at least a second.
func requeueFor(t, now time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	if d := t.Sub(now); d > time.Second {
		return d
	}
	return time.Second
}
