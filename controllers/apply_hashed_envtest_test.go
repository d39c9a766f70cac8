package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// hashedChildren are the builders' children of the kinds told in step
// from their metadata, for a store and a retention policy of namespace ns
// (neither is created: the children only name them as owners).
func hashedChildren(ns string) []struct {
	desired runtime.ApplyConfiguration
	live    func() client.Object
} {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: ns, UID: types.UID("7d3c1a52-0000-4000-8000-000000000001")},
		Spec: v1alpha1.DossierStoreSpec{Service: v1alpha1.ServiceYouthAndFamilyCentre,
			Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}}, ServiceAccountName: "dossier-app", AppPort: 8080}}}
	policy := &v1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "retention", Namespace: ns, UID: types.UID("7d3c1a52-0000-4000-8000-000000000002")},
		Spec: v1alpha1.RetentionPolicySpec{StoreRef: v1alpha1.StoreReference{Name: "dossiers"}, Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"}, Schedule: "0 3 * * *",
			Rules: []v1alpha1.RetentionRule{{Name: "dossiers", Table: "dossiers", Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockEndOfHelp, Column: "help_ended_at"}, Period: "P20Y"}}}}
	return []struct {
		desired runtime.ApplyConfiguration
		live    func() client.Object
	}{
		{resources.WorkloadAccessRole(store), func() client.Object { return &rbacv1.Role{} }},
		{resources.WorkloadAccessBinding(store), func() client.Object { return &rbacv1.RoleBinding{} }},
		{resources.IsolationPolicy(store, testIsolation, nil), func() client.Object { return &networkingv1.NetworkPolicy{} }},
		{resources.SweeperServiceAccount(policy), func() client.Object { return &corev1.ServiceAccount{} }},
		{resources.SweeperRole(policy), func() client.Object { return &rbacv1.Role{} }},
		{resources.SweeperRoleBinding(policy), func() client.Object { return &rbacv1.RoleBinding{} }},
		{resources.SweeperCronJob(policy, controllers.DefaultSweeperImage, 3600), func() client.Object { return &batchv1.CronJob{} }},
	}
}

// The fields the manager expects dossierguard's apply to own are the ones
// the API server records, for every kind and builder told in step by hash:
// if they differed, every reconcile would apply the child again.
func TestHashedChildrenOwnWhatTheAPIServerRecords(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, child := range hashedChildren(ns) {
		live := child.live()
		t.Run(fmt.Sprintf("%T", live), func(t *testing.T) {
			wrote, err := controllers.ApplyChild(ctx, k8s, child.desired, live)
			if err != nil || !wrote {
				t.Fatalf("first apply: wrote %v, %v; want a write", wrote, err)
			}
			got := child.live()
			if err := k8s.Get(ctx, keyOf(t, child.desired), got); err != nil {
				t.Fatal(err)
			}
			same, err := controllers.OwnsExactly(got, child.desired)
			if err != nil || !same {
				t.Fatalf("the fields expected differ from the API server's record (%v): %s", err, ownEntry(got))
			}
			if got.GetAnnotations()[v1alpha1.AnnotationAppliedHash] == "" {
				t.Errorf("annotations %v; want the applied hash", got.GetAnnotations())
			}
			wrote, err = controllers.ApplyChild(ctx, k8s, child.desired, child.live())
			if err != nil || wrote {
				t.Errorf("second apply: wrote %v, %v; want no write", wrote, err)
			}
		})
	}
}

// A child told in step by hash is applied again when someone else changes
// or removes what dossierguard wrote, and only then.
func TestHashedChildEditedBySomeoneElseIsApplied(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	desired := hashedChildren(ns)[0].desired // the workload's Role
	for _, tc := range []struct {
		name  string
		edit  func(*rbacv1.Role)
		write bool
	}{
		{"a rule added", func(r *rbacv1.Role) {
			r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}})
		}, true},
		{"the hash removed", func(r *rbacv1.Role) { delete(r.Annotations, v1alpha1.AnnotationAppliedHash) }, true},
		{"the hash changed", func(r *rbacv1.Role) { r.Annotations[v1alpha1.AnnotationAppliedHash] = "0" }, true},
		{"a label of dossierguard's removed", func(r *rbacv1.Role) { delete(r.Labels, resources.LabelManagedBy) }, true},
		{"a label of someone else's added", func(r *rbacv1.Role) { r.Labels["team"] = "platform" }, false},
		{"an annotation of someone else's added", func(r *rbacv1.Role) { r.Annotations["note"] = "checked" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := controllers.ApplyChild(ctx, k8s, desired, &rbacv1.Role{}); err != nil {
				t.Fatal(err)
			}
			role := &rbacv1.Role{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dossiers-workload"}, role); err != nil {
				t.Fatal(err)
			}
			rules := len(role.Rules)
			tc.edit(role)
			if err := k8s.Update(ctx, role, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
			wrote, err := controllers.ApplyChild(ctx, k8s, desired, &rbacv1.Role{})
			if err != nil {
				t.Fatal(err)
			}
			if wrote != tc.write {
				t.Fatalf("wrote %v after the edit; want %v", wrote, tc.write)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(role), role); err != nil {
				t.Fatal(err)
			}
			if len(role.Rules) != rules || role.Labels[resources.LabelManagedBy] == "" || role.Annotations[v1alpha1.AnnotationAppliedHash] == "" {
				t.Errorf("after the apply: %d rules (want %d), labels %v, annotations %v", len(role.Rules), rules, role.Labels, role.Annotations)
			}
			if wrote, err := controllers.ApplyChild(ctx, k8s, desired, &rbacv1.Role{}); err != nil || wrote {
				t.Errorf("apply after the repair: wrote %v, %v; want no write", wrote, err)
			}
			// Undo the others' additions for the next case.
			if err := k8s.Delete(ctx, role); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// keyOf is the namespace and name of an apply configuration.
func keyOf(t *testing.T, desired runtime.ApplyConfiguration) client.ObjectKey {
	t.Helper()
	data, err := json.Marshal(desired)
	if err != nil {
		t.Fatal(err)
	}
	var obj metav1.PartialObjectMetadata
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return client.ObjectKeyFromObject(&obj)
}

func ownEntry(o client.Object) string {
	for _, e := range o.GetManagedFields() {
		if e.Manager == resources.FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.FieldsV1 != nil {
			return e.FieldsV1.GetRawString()
		}
	}
	return "no applied entry of " + resources.FieldOwner
}
