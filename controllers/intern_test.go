package controllers

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// decoded is a fresh copy of obj, as an informer decodes each object: no
// string shared with any other copy.
func decoded[T any](t *testing.T, obj *T) *T {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameStorage(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func TestInternedSharesMetadata(t *testing.T) {
	policy := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "jeugd",
		Labels:          map[string]string{"app.kubernetes.io/managed-by": "dossierguard", "privacy.dossierguard.io/store": "dossiers"},
		Annotations:     map[string]string{"note": "x"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "privacy.dossierguard.io/v1alpha1", Kind: "DossierStore", Name: "dossiers", UID: "u"}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "dossierguard", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "networking.k8s.io/v1", FieldsType: "FieldsV1"}}}}
	transform := interned(unchanged)
	var got []*networkingv1.NetworkPolicy
	for range 2 {
		out, err := transform(decoded(t, policy))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.(*networkingv1.NetworkPolicy))
	}
	a, b := got[0], got[1]
	if !reflect.DeepEqual(a, policy) || !reflect.DeepEqual(b, policy) {
		t.Fatalf("values changed: %+v", a.ObjectMeta)
	}
	for k, v := range a.Labels {
		for k2, v2 := range b.Labels {
			if k == k2 && (!sameStorage(k, k2) || !sameStorage(v, v2)) {
				t.Errorf("label %s not shared", k)
			}
		}
	}
	pairs := map[string][2]string{
		"namespace":   {a.Namespace, b.Namespace},
		"owner kind":  {a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind},
		"owner name":  {a.OwnerReferences[0].Name, b.OwnerReferences[0].Name},
		"manager":     {a.ManagedFields[0].Manager, b.ManagedFields[0].Manager},
		"api version": {a.ManagedFields[0].APIVersion, b.ManagedFields[0].APIVersion},
	}
	for what, p := range pairs {
		if !sameStorage(p[0], p[1]) {
			t.Errorf("%s not shared", what)
		}
	}
	// A content hash differs from object to object: it is not interned.
	hashed := policy.DeepCopy()
	hashed.Annotations = map[string]string{v1alpha1.AnnotationAppliedHash: "3f1c", "note": "x"}
	c, err := transform(decoded(t, hashed))
	if err != nil {
		t.Fatal(err)
	}
	d, err := transform(decoded(t, hashed))
	if err != nil {
		t.Fatal(err)
	}
	ca, da := c.(*networkingv1.NetworkPolicy).Annotations, d.(*networkingv1.NetworkPolicy).Annotations
	if sameStorage(ca[v1alpha1.AnnotationAppliedHash], da[v1alpha1.AnnotationAppliedHash]) || !sameStorage(ca["note"], da["note"]) {
		t.Error("the applied hash is interned, or another annotation is not")
	}
	if out, err := transform("tombstone"); err != nil || out != "tombstone" {
		t.Errorf("non-object: got %v, %v", out, err)
	}
}

func TestInternedSharesStatus(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n"}}
	store.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "every control passes"}}
	store.Status.Compliance = []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlEncryptionAtRest, Reference: "AVG art. 32(1)(a); BIO 8.24",
		Result: v1alpha1.ResultPass, Reason: "EncryptionVerified", Message: "the StorageClass encrypts at rest", Evidence: []string{"StorageClass/encrypted"}}}
	transform := interned(withoutManagedFields)
	var got []*v1alpha1.DossierStore
	for range 2 {
		out, err := transform(decoded(t, store))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.(*v1alpha1.DossierStore))
	}
	a, b := got[0].Status, got[1].Status
	if !reflect.DeepEqual(a, store.Status) {
		t.Fatalf("status changed: %+v", a)
	}
	ca, cb := a.Compliance[0], b.Compliance[0]
	for what, p := range map[string][2]string{
		"condition reason":  {a.Conditions[0].Reason, b.Conditions[0].Reason},
		"condition message": {a.Conditions[0].Message, b.Conditions[0].Message},
		"control":           {ca.Control, cb.Control},
		"reference":         {ca.Reference, cb.Reference},
		"result":            {string(ca.Result), string(cb.Result)},
		"message":           {ca.Message, cb.Message},
		"evidence":          {ca.Evidence[0], cb.Evidence[0]},
	} {
		if !sameStorage(p[0], p[1]) {
			t.Errorf("%s not shared", what)
		}
	}
	if commonStatusOf(&networkingv1.NetworkPolicy{}) != nil {
		t.Error("a status for a kind outside the API")
	}
}
