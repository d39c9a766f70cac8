package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestWatchPredicates(t *testing.T) {
	role := &v1alpha1.AccessRole{ObjectMeta: metav1.ObjectMeta{Name: "coach", Generation: 1, ResourceVersion: "1"}}
	roleStatus := role.DeepCopy()
	roleStatus.ResourceVersion = "2"
	roleStatus.Status.PolicyHash = "abc"
	roleSpec := role.DeepCopy()
	roleSpec.Generation = 2
	roleDeleted := role.DeepCopy()
	roleDeleted.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}

	agreement := &v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Name: "a", Generation: 1}}
	agreementCompliance := agreement.DeepCopy()
	agreementCompliance.Status.Compliance = []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlLawfulBasis}}
	agreementInForce := agreement.DeepCopy()
	agreementInForce.Status.InForce = true
	agreementReason := agreement.DeepCopy()
	agreementReason.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionAgreementInForce, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonExpired}}

	policy := &v1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 1}}
	policyNextRun := policy.DeepCopy()
	policyNextRun.Status.NextRun = &metav1.Time{}
	policyOutcome := policy.DeepCopy()
	policyOutcome.Status.Compliance = []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlRetentionEnforced, Result: v1alpha1.ResultPass, Reason: v1alpha1.ReasonRunSucceeded}}

	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s", Generation: 1}}
	storeReady := store.DeepCopy()
	storeReady.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonStoreReady}}
	storeNotReady := store.DeepCopy()
	storeNotReady.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonEncryptionUnverified}}
	storeCompliance := store.DeepCopy()
	storeCompliance.Status.KeyVersion = 2

	storeGuarded := store.DeepCopy()
	storeGuarded.Finalizers = []string{v1alpha1.StoreFinalizer, "example.com/keep"}
	storeUnguarded := store.DeepCopy()
	storeUnguarded.Finalizers = []string{"example.com/keep"}
	storeGuardedDeleting := storeGuarded.DeepCopy()
	storeGuardedDeleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	storeUnguardedDeleting := storeUnguarded.DeepCopy()
	storeUnguardedDeleting.DeletionTimestamp = storeGuardedDeleting.DeletionTimestamp

	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", ResourceVersion: "1"}}
	claimBound := claim.DeepCopy()
	claimBound.ResourceVersion = "2"
	claimBound.Status.Phase = corev1.ClaimBound
	claimEdited := claim.DeepCopy()
	claimEdited.Spec.VolumeName = "pv"

	cases := []struct {
		name     string
		p        predicate.Predicate
		old, new client.Object
		want     bool
	}{
		{"role status write to store", specMetadataOrDeletion, role, roleStatus, false},
		{"role spec change to store", specMetadataOrDeletion, role, roleSpec, true},
		{"role deletion to store", specMetadataOrDeletion, role, roleDeleted, true},
		{"agreement compliance rows to store", predicate.Or(specMetadataOrDeletion, agreementOutcomeChanged), agreement, agreementCompliance, false},
		{"agreement in force to store", predicate.Or(specMetadataOrDeletion, agreementOutcomeChanged), agreement, agreementInForce, true},
		{"agreement reason to store", predicate.Or(specMetadataOrDeletion, agreementOutcomeChanged), agreement, agreementReason, true},
		{"policy next run to store", predicate.Or(specMetadataOrDeletion, retentionOutcomeChanged), policy, policyNextRun, false},
		{"policy outcome to store", predicate.Or(specMetadataOrDeletion, retentionOutcomeChanged), policy, policyOutcome, true},
		{"store Ready to agreements", predicate.Or(specMetadataOrDeletion, storeReadyChanged), store, storeReady, true},
		{"store other status to agreements", predicate.Or(specMetadataOrDeletion, storeReadyChanged), store, storeCompliance, false},
		{"store's first Ready False to agreements", predicate.Or(specMetadataOrDeletion, storeReadyChanged), store, storeNotReady, true},
		{"store Ready False to True to agreements", predicate.Or(specMetadataOrDeletion, storeReadyChanged), storeNotReady, storeReady, true},
		{"store's first Ready to roles", predicate.Or(specMetadataOrDeletion, storeAssessed), store, storeNotReady, true},
		{"store Ready flip to roles", predicate.Or(specMetadataOrDeletion, storeAssessed), storeNotReady, storeReady, false},
		{"store other status to roles", predicate.Or(specMetadataOrDeletion, storeAssessed), storeReady, withKeyVersion(storeReady, 2), false},
		{"store finalizer taken off to the store", storeFinalizerRemoved, storeGuarded, storeUnguarded, true},
		{"store finalizer put on to the store", storeFinalizerRemoved, storeUnguarded, storeGuarded, false},
		{"another finalizer taken off to the store", storeFinalizerRemoved, storeGuarded, withFinalizers(storeGuarded, v1alpha1.StoreFinalizer), false},
		{"store finalizer removed in deletion to the store", storeFinalizerRemoved, storeGuardedDeleting, storeUnguardedDeleting, false},
		{"store status write to the store", storeFinalizerRemoved, storeGuarded, withKeyVersion(storeGuarded, 2), false},
		{"claim bound", notStatusOnly, claim, claimBound, false},
		{"claim edited", notStatusOnly, claim, claimEdited, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.want {
				t.Errorf("update passes = %v; want %v", got, c.want)
			}
			if !c.p.Create(event.CreateEvent{Object: c.new}) || !c.p.Delete(event.DeleteEvent{Object: c.new}) {
				t.Error("create and delete must always pass")
			}
		})
	}
}

func withFinalizers(s *v1alpha1.DossierStore, finalizers ...string) *v1alpha1.DossierStore {
	c := s.DeepCopy()
	c.Finalizers = finalizers
	return c
}

func withKeyVersion(s *v1alpha1.DossierStore, v int32) *v1alpha1.DossierStore {
	c := s.DeepCopy()
	c.Status.KeyVersion = v
	return c
}

func TestFirstLookWait(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	created := func(ago time.Duration) metav1.Object {
		return &v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Name: "a", CreationTimestamp: metav1.NewTime(now.Add(-ago))}}
	}
	unassessed := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s"}}
	assessed := unassessed.DeepCopy()
	assessed.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonEncryptionUnverified}}
	deleting := unassessed.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	reported := []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonStoreNotReady}}

	cases := []struct {
		name       string
		referrer   metav1.Object
		conditions []metav1.Condition
		store      *v1alpha1.DossierStore
		want       time.Duration
	}{
		{"new referrer, store not assessed yet: wait for it", created(10 * time.Second), nil, unassessed, storeAssessGrace - 10*time.Second},
		{"new referrer, store assessed (even not Ready): go on", created(10 * time.Second), nil, assessed, 0},
		{"referrer that has reported: go on, whatever the store", created(10 * time.Second), reported, unassessed, 0},
		{"new referrer, store not in the cache yet: wait a little", created(3 * time.Second), nil, nil, storeMissingGrace - 3*time.Second},
		{"store missing beyond its grace: go on and report it missing", created(storeMissingGrace), nil, nil, 0},
		{"store being deleted: go on", created(10 * time.Second), nil, deleting, 0},
		{"store not assessed within the grace: go on", created(storeAssessGrace + time.Second), nil, unassessed, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := firstLookWait(c.referrer, c.conditions, c.store, now); got != c.want {
				t.Errorf("firstLookWait = %v; want %v", got, c.want)
			}
		})
	}
}
