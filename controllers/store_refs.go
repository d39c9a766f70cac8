package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// storeRefIndex indexes the kinds that refer to a store by their store.
const storeRefIndex = "spec.storeRef.name"

// indexStoreRefs registers the storeRef index of the kinds that refer to a store.
func indexStoreRefs(mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(context.Background(), &v1alpha1.AccessRole{}, storeRefIndex,
		func(o client.Object) []string { return []string{o.(*v1alpha1.AccessRole).Spec.StoreRef.Name} }); err != nil {
		return err
	}
	if err := indexer.IndexField(context.Background(), &v1alpha1.SharingAgreement{}, storeRefIndex,
		func(o client.Object) []string { return []string{o.(*v1alpha1.SharingAgreement).Spec.StoreRef.Name} }); err != nil {
		return err
	}
	if err := indexer.IndexField(context.Background(), &v1alpha1.RetentionPolicy{}, storeRefIndex,
		func(o client.Object) []string { return []string{o.(*v1alpha1.RetentionPolicy).Spec.StoreRef.Name} }); err != nil {
		return err
	}
	return indexer.IndexField(context.Background(), &v1alpha1.DataSubjectRequest{}, storeRefIndex,
		func(o client.Object) []string { return []string{o.(*v1alpha1.DataSubjectRequest).Spec.StoreRef.Name} })
}

// How long a referrer's first status waits (firstLookWait): for its
// store's first assessment, which under a burst of new stores comes when
// the store's turn in the queue does; and for a store it names that the
// cache does not have, which is usually a store created moments before
// (its creation enqueues the referrer again).
const (
	storeAssessGrace  = 5 * time.Minute
	storeMissingGrace = 5 * time.Second
)

// firstLookWait says how long a referrer (a role, an agreement) should wait
// before its first status, zero when it should go on now. A referrer's
// first status waits while its store has not been assessed yet (no Ready
// condition) or is not in the cache yet: a verdict on a store nobody has
// looked at ("not Ready", "not found") would be overturned moments later,
// at the cost of a status write, a report and an event for a state that
// never was. Waiting is fail closed: a referrer without status has applied
// nothing, so nothing is shared. It waits only before its own first status
// (a referrer that has reported goes on and judges the store as it is) and
// at most storeAssessGrace (storeMissingGrace for a missing store) after it
// was created, so that a store reconciler that does not answer, or a store
// that does not exist, is reported.
func firstLookWait(referrer metav1.Object, conditions []metav1.Condition, store *v1alpha1.DossierStore, now time.Time) time.Duration {
	if len(conditions) > 0 {
		return 0
	}
	grace := storeAssessGrace
	switch {
	case store == nil:
		grace = storeMissingGrace
	case !store.DeletionTimestamp.IsZero() || meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionReady) != nil:
		return 0
	}
	if left := referrer.GetCreationTimestamp().Add(grace).Sub(now); left > 0 {
		return left
	}
	return 0
}

// readStore reads a store and what its referrers need to know of it. A
// missing store is not an error: it is reported in status.
func readStore(ctx context.Context, c client.Client, namespace, name string) (*v1alpha1.DossierStore, compliance.StoreView, error) {
	store := &v1alpha1.DossierStore{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, store); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, compliance.StoreView{}, nil
		}
		return nil, compliance.StoreView{}, err
	}
	return store, compliance.StoreView{
		Found:      store.DeletionTimestamp.IsZero(),
		Ready:      meta.IsStatusConditionTrue(store.Status.Conditions, v1alpha1.ConditionReady),
		Categories: store.Spec.DataCategories,
	}, nil
}

// referrers maps a store to the objects of list's kind that refer to it.
func referrers(c client.Client, list client.ObjectList) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, store client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(store.GetNamespace()), client.MatchingFields{storeRefIndex: store.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "Listing the referrers of a store failed", "store", store.GetName())
			return nil
		}
		items, _ := meta.ExtractList(l)
		out := make([]reconcile.Request, 0, len(items))
		for _, item := range items {
			o := item.(client.Object)
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
		return out
	}
}

// toStore maps a referrer (role, agreement, policy) to its store.
func toStore(ctx context.Context, o client.Object) []reconcile.Request {
	var name string
	switch r := o.(type) {
	case *v1alpha1.AccessRole:
		name = r.Spec.StoreRef.Name
	case *v1alpha1.SharingAgreement:
		name = r.Spec.StoreRef.Name
	case *v1alpha1.RetentionPolicy:
		name = r.Spec.StoreRef.Name
	case *v1alpha1.DataSubjectRequest:
		name = r.Spec.StoreRef.Name
	}
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

func metaFor(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
