package controllers_test

import (
	"context"
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// access is one question to the API server's authorizer.
type access struct{ verb, group, resource, subresource, name string }

func (a access) String() string {
	return fmt.Sprintf("%s %s/%s/%s %q", a.verb, a.group, a.resource, a.subresource, a.name)
}

// allowed asks the API server whether the ServiceAccount ns/sa may do a in ns.
func allowed(t *testing.T, ns, sa string, a access) bool {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: a.verb, Group: a.group,
			Resource: a.resource, Subresource: a.subresource, Name: a.name}}}
	if err := k8s.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.Allowed
}

// legacyWorkloadAccess are the two Roles and RoleBindings that granted the
// workload's ServiceAccount its access before they became one, as the
// operator rendered them for store "dossiers" (keys.go and
// subjectrequests.go before the change): the data key, and the namespace's
// DataSubjectRequests.
func legacyWorkloadAccess(ns string) []client.Object {
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "dossier-app", Namespace: ns}}
	ref := func(name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}
	}
	return []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-datakey-reader", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"dossiers-datakey"}, Verbs: []string{"get"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-datakey-reader", Namespace: ns}, RoleRef: ref("dossiers-datakey-reader"), Subjects: subject},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-subject-requests", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"datasubjectrequests"}, Verbs: []string{"get", "list", "watch"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-subject-requests", Namespace: ns}, RoleRef: ref("dossiers-subject-requests"), Subjects: subject},
	}
}

// TestWorkloadAccessIsWhatTheTwoRolesGranted: the one Role and RoleBinding
// of the workload's ServiceAccount let it do exactly what the two pairs
// did, no more and no less, asked of the API server's own authorizer
// (SubjectAccessReview) for every verb on the data key, the store's other
// Secrets, Secrets at large, the DataSubjectRequests and their status, and
// the operator's other kinds; the two pairs are fixtures in a namespace
// without a store. Another ServiceAccount of the namespace may do none of
// it.
func TestWorkloadAccessIsWhatTheTwoRolesGranted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	before := newNamespace(t)
	for _, o := range legacyWorkloadAccess(before) {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	group := v1alpha1.GroupVersion.Group
	var questions []access
	for _, verb := range []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"} {
		for _, name := range []string{"dossiers-datakey", "dossiers-pseudonym", "dossiers-audit-signing", "dossiers-proxy-tls", "other", ""} {
			questions = append(questions, access{verb, "", "secrets", "", name})
		}
		for _, name := range []string{"afscherming-1", ""} {
			questions = append(questions, access{verb, group, "datasubjectrequests", "", name},
				access{verb, group, "datasubjectrequests", "status", name})
		}
		for _, resource := range []string{"dossierstores", "accessroles", "sharingagreements", "retentionpolicies", "processingactivities"} {
			questions = append(questions, access{verb, group, resource, "", ""})
		}
		questions = append(questions, access{verb, "", "configmaps", "", "dossiers-access-policy"},
			access{verb, "rbac.authorization.k8s.io", "roles", "", ""})
	}
	granted := 0
	eventually(t, timeout, func() error {
		granted = 0
		for _, q := range questions {
			now, then := allowed(t, ns, "dossier-app", q), allowed(t, before, "dossier-app", q)
			if now != then {
				return fmt.Errorf("%s: allowed %v now, %v with the two Roles", q, now, then)
			}
			if now {
				granted++
			}
			if allowed(t, ns, "toolbox", q) {
				return fmt.Errorf("%s: another ServiceAccount is allowed", q)
			}
		}
		return nil
	})
	// get on the data key; get, list and watch on the requests (by name and all).
	if granted != 7 {
		t.Errorf("%d of %d questions allowed; want 7 (get the data key; get, list, watch the requests, by name and all)", granted, len(questions))
	}
}

// TestLegacyWorkloadAccessIsRemoved: the Roles and RoleBindings a store had
// before the workload's access became one pair, and its NetworkPolicy to
// the API server before that became part of the isolation policy, are
// removed; a Role of the same name that the store does not control is left
// alone.
func TestLegacyWorkloadAccessIsRemoved(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	store = getStore(t, store)
	owner := metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "DossierStore", Name: store.Name, UID: store.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	legacy := legacyWorkloadAccess(ns)
	apiServer := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-api-server", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}}
	legacy = append([]client.Object{legacy[0], legacy[1], apiServer}, legacy[2:]...)
	for _, o := range legacy[:3] { // the data-key pair and the API server policy, as the store owned them
		o.SetOwnerReferences([]metav1.OwnerReference{owner})
		o.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "dossierguard", "privacy.dossierguard.io/store": store.Name})
	}
	for _, o := range legacy {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	touch(t, store)
	eventually(t, timeout, func() error {
		for _, o := range legacy[:3] {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)); err == nil {
				return fmt.Errorf("%T %s is still there", o, o.GetName())
			}
		}
		return nil
	})
	for _, o := range legacy[3:] {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)); err != nil {
			t.Errorf("%T %s, which the store does not control, was removed: %v", o, o.GetName(), err)
		}
	}
}
