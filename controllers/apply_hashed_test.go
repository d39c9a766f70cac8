package controllers

import (
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

func TestHashedChildOf(t *testing.T) {
	role := func(verb string) *rbacv1ac.RoleApplyConfiguration {
		return rbacv1ac.Role("r", "ns").
			WithLabels(map[string]string{"a": "b"}).
			WithAnnotations(map[string]string{"kept": "yes"}).
			WithRules(rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("secrets").WithVerbs(verb))
	}
	first, err := hashedChildOf(role("get"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := hashedChildOf(role("get"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := hashedChildOf(role("list"))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.hash) != 64 || first.hash != again.hash {
		t.Errorf("hashes %q and %q of one configuration; want one SHA-256", first.hash, again.hash)
	}
	if other.hash == first.hash {
		t.Error("a changed rule kept the hash")
	}
	if first.key.Namespace != "ns" || first.key.Name != "r" {
		t.Errorf("key %v; want ns/r", first.key)
	}
	obj, err := first.object()
	if err != nil {
		t.Fatal(err)
	}
	got := obj.GetAnnotations()
	if got[v1alpha1.AnnotationAppliedHash] != first.hash || got["kept"] != "yes" {
		t.Errorf("annotations %v; want the builders' and the hash", got)
	}
	if obj.GetKind() != "Role" || obj.GetNamespace() != "ns" || obj.GetLabels()["a"] != "b" {
		t.Errorf("object %v; want the configuration's kind, identity and labels", obj.Object)
	}
}

// labelledRole is a Role with one label and one rule, as applyHashed
// would apply it.
func labelledRole(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	child, err := hashedChildOf(rbacv1ac.Role("r", "ns").WithLabels(map[string]string{"a": "b"}).
		WithRules(rbacv1ac.PolicyRule().WithVerbs("get")))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := child.object()
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestFieldsOfLeavesOutTheIdentity(t *testing.T) {
	obj := labelledRole(t)
	set, err := fieldsOf(obj)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"f:metadata":{"f:annotations":{"f:privacy.dossierguard.io/applied-sha256":{}},"f:labels":{"f:a":{}}},"f:rules":{}}`
	got, err := set.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("fields\n%s\nwant\n%s", got, want)
	}
}

func TestOwnsExactly(t *testing.T) {
	obj := labelledRole(t)
	entry := func(manager string, op metav1.ManagedFieldsOperationType, subresource, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields)}
	}
	const (
		all      = `{"f:metadata":{"f:annotations":{"f:privacy.dossierguard.io/applied-sha256":{}},"f:labels":{"f:a":{}}},"f:rules":{}}`
		noRules  = `{"f:metadata":{"f:annotations":{"f:privacy.dossierguard.io/applied-sha256":{}},"f:labels":{"f:a":{}}}}`
		extra    = `{"f:metadata":{"f:annotations":{"f:privacy.dossierguard.io/applied-sha256":{}},"f:labels":{"f:a":{},"f:z":{}}},"f:rules":{}}`
		onlyRule = `{"f:rules":{}}`
	)
	own := resources.FieldOwner
	for _, tc := range []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    bool
	}{
		{"as applied", []metav1.ManagedFieldsEntry{entry(own, metav1.ManagedFieldsOperationApply, "", all)}, true},
		{"as applied, others own fields besides", []metav1.ManagedFieldsEntry{
			entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", onlyRule),
			entry(own, metav1.ManagedFieldsOperationApply, "", all)}, true},
		{"a field taken by someone else", []metav1.ManagedFieldsEntry{
			entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", onlyRule),
			entry(own, metav1.ManagedFieldsOperationApply, "", noRules)}, false},
		{"a field no longer wanted still owned", []metav1.ManagedFieldsEntry{entry(own, metav1.ManagedFieldsOperationApply, "", extra)}, false},
		{"only an update entry", []metav1.ManagedFieldsEntry{entry(own, metav1.ManagedFieldsOperationUpdate, "", all)}, false},
		{"only a status entry", []metav1.ManagedFieldsEntry{entry(own, metav1.ManagedFieldsOperationApply, "status", all)}, false},
		{"unreadable", []metav1.ManagedFieldsEntry{entry(own, metav1.ManagedFieldsOperationApply, "", `{"f:rules":`)}, false},
		{"no entries", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ownsExactly(tc.entries, obj)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ownsExactly = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestTrimmedChild(t *testing.T) {
	own := metav1.ManagedFieldsEntry{Manager: resources.FieldOwner, Operation: metav1.ManagedFieldsOperationApply}
	others := metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}
	meta := func(entries ...metav1.ManagedFieldsEntry) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "x", Namespace: "ns", Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{v1alpha1.AnnotationAppliedHash: "h"}, ManagedFields: entries}
	}
	in, kept := meta(own, others), meta(own)
	lastRun := metav1.Now()
	types := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	for _, tc := range []struct {
		in, want client.Object
	}{
		{&rbacv1.Role{ObjectMeta: in, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}}}}, &rbacv1.Role{ObjectMeta: kept}},
		{&rbacv1.RoleBinding{ObjectMeta: in, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "s"}}, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"}},
			&rbacv1.RoleBinding{ObjectMeta: kept}},
		{&corev1.ServiceAccount{ObjectMeta: in, Secrets: []corev1.ObjectReference{{Name: "s"}}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "p"}}},
			&corev1.ServiceAccount{ObjectMeta: kept}},
		{&networkingv1.NetworkPolicy{ObjectMeta: in, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			PolicyTypes: types}},
			&networkingv1.NetworkPolicy{ObjectMeta: kept, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: types}}},
		{&batchv1.CronJob{ObjectMeta: in, Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "sweeper"}}}}}}},
			Status: batchv1.CronJobStatus{LastScheduleTime: &lastRun}},
			&batchv1.CronJob{ObjectMeta: kept, Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *"}, Status: batchv1.CronJobStatus{LastScheduleTime: &lastRun}}},
	} {
		in := tc.in.DeepCopyObject().(client.Object)
		t.Run(fmt.Sprintf("%T", in), func(t *testing.T) {
			if !comparedByHash(in) {
				t.Fatalf("%T is trimmed but not compared by hash", in)
			}
			out, err := trimmedChild(in)
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(out, tc.want) {
				t.Errorf("trimmed\n%+v\nwant\n%+v", out, tc.want)
			}
			// The cache trims the kind so.
			var transform func(any) (any, error)
			for obj, by := range CacheOptions(ReportKinds{OpenReports: true}).ByObject {
				if fmt.Sprintf("%T", obj) == fmt.Sprintf("%T", in) {
					transform = by.Transform
				}
			}
			if transform == nil {
				t.Fatalf("%T has no cache transform", in)
			}
			cached, err := transform(tc.in.DeepCopyObject())
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(cached, tc.want) {
				t.Errorf("cached\n%+v\nwant\n%+v", cached, tc.want)
			}
		})
	}
	// A claim is read whole (its size and phase): not compared by hash, and
	// only others' managed fields are dropped.
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: meta(own, others), Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "v"}}
	if comparedByHash(claim) {
		t.Fatal("claims are compared by hash")
	}
	out, err := trimmedChild(claim)
	if err != nil {
		t.Fatal(err)
	}
	if c := out.(*corev1.PersistentVolumeClaim); c.Spec.VolumeName != "v" || len(c.ManagedFields) != 1 {
		t.Errorf("claim %+v; want its spec and dossierguard's managed fields", c)
	}
}
