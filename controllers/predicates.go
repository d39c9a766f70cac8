package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Watch predicates. Each lets through what the watching reconciler reads
// of the object and filters out the rest, above all the status writes of
// other reconcilers: without them every status write of an AccessRole,
// SharingAgreement or RetentionPolicy would cost a store reconcile with an
// uncached pod LIST. Create, delete and generic events always pass.

// deletionStarted lets through the update that sets deletionTimestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// storeFinalizerRemoved lets through the update that takes the store's
// finalizer off a store that is not being deleted: the store reconciler
// puts it back at once (the admission policy sets it only at creation).
var storeFinalizerRemoved = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectNew.GetDeletionTimestamp().IsZero() &&
			controllerutil.ContainsFinalizer(e.ObjectOld, v1alpha1.StoreFinalizer) &&
			!controllerutil.ContainsFinalizer(e.ObjectNew, v1alpha1.StoreFinalizer)
	},
}

// specMetadataOrDeletion: what a referrer reads of its own spec and of the
// object's metadata.
var specMetadataOrDeletion = predicate.Or(specOrMetadataChanged, deletionStarted)

// storeReadyChanged lets through a store update that changes its Ready
// condition's status, or gives the store its first Ready condition, which
// SharingAgreements read: nothing is shared from a store that is not Ready,
// and an agreement's first status waits for the store's first assessment
// (firstLookWait).
var storeReadyChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.DossierStore)
		n, ok2 := e.ObjectNew.(*v1alpha1.DossierStore)
		return !ok1 || !ok2 || readyStatus(o) != readyStatus(n)
	},
}

// storeAssessed lets through the store update that gives the store its
// first Ready condition, for which a role's first status waits
// (firstLookWait).
var storeAssessed = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.DossierStore)
		n, ok2 := e.ObjectNew.(*v1alpha1.DossierStore)
		return !ok1 || !ok2 || (readyStatus(o) == "") != (readyStatus(n) == "")
	},
}

// readyStatus is the status of a store's Ready condition, empty when it
// has none.
func readyStatus(s *v1alpha1.DossierStore) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Status
	}
	return ""
}

// agreementOutcomeChanged lets through a SharingAgreement status update
// that changes what a store summarises of it: whether it is in force and
// the reason of AgreementInForce.
var agreementOutcomeChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.SharingAgreement)
		n, ok2 := e.ObjectNew.(*v1alpha1.SharingAgreement)
		return !ok1 || !ok2 || o.Status.InForce != n.Status.InForce ||
			conditionReason(o.Status.Conditions, v1alpha1.ConditionAgreementInForce) !=
				conditionReason(n.Status.Conditions, v1alpha1.ConditionAgreementInForce)
	},
}

// retentionOutcomeChanged lets through a RetentionPolicy status update
// that changes the outcome a store summarises of it.
var retentionOutcomeChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.RetentionPolicy)
		n, ok2 := e.ObjectNew.(*v1alpha1.RetentionPolicy)
		return !ok1 || !ok2 ||
			!equality.Semantic.DeepEqual(retentionOutcomes([]v1alpha1.RetentionPolicy{*o}), retentionOutcomes([]v1alpha1.RetentionPolicy{*n}))
	},
}

// notStatusOnly filters out updates of a child that change only its
// status (a claim binding, a CronJob's last schedule time), which no
// reconciler reads; changes to anything dossierguard applies pass, so that
// an edit by someone else is reverted. It is for kinds whose generation
// does not cover every spec change.
var notStatusOnly = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !equality.Semantic.DeepEqual(withoutStatus(e.ObjectOld), withoutStatus(e.ObjectNew))
	},
}

// withoutStatus is the object as a map without its status and without the
// metadata every write changes. An object that cannot be converted is
// compared in full (fail open: a reconcile too many, never one too few).
func withoutStatus(o client.Object) any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return o
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
		delete(md, "managedFields")
	}
	return m
}

func conditionReason(conditions []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conditions, t); c != nil {
		return c.Reason
	}
	return ""
}
