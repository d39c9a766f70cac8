package controllers

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/dossierguard/dossierguard/internal/resources"
)

func TestOwnManagedFieldsOnly(t *testing.T) {
	entry := func(manager string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationApply}
	}
	cases := []struct {
		name string
		in   []metav1.ManagedFieldsEntry
		want []string
	}{
		{"others' entries dropped, dossierguard's kept", []metav1.ManagedFieldsEntry{entry("kubectl"), entry(resources.FieldOwner), entry("kube-controller-manager")}, []string{resources.FieldOwner}},
		{"only others'", []metav1.ManagedFieldsEntry{entry("kubectl")}, nil},
		{"only dossierguard's", []metav1.ManagedFieldsEntry{entry(resources.FieldOwner)}, []string{resources.FieldOwner}},
		{"none", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", ManagedFields: c.in}}
			out, err := ownManagedFieldsOnly(in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range out.(*networkingv1.NetworkPolicy).ManagedFields {
				got = append(got, e.Manager)
			}
			if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
				t.Errorf("managers kept %v; want %v", got, c.want)
			}
		})
	}
	// Not an object (a tombstone, say): passed on unchanged.
	if out, err := ownManagedFieldsOnly("tombstone"); err != nil || out != "tombstone" {
		t.Errorf("non-object: got %v, %v", out, err)
	}
}

func TestWithoutManagedFields(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []metav1.ManagedFieldsEntry
	}{
		{"every entry dropped, dossierguard's too", []metav1.ManagedFieldsEntry{{Manager: "kubectl"}, {Manager: resources.FieldOwner}}},
		{"none", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "b"}, ManagedFields: c.in}}
			out, err := withoutManagedFields(in)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*networkingv1.NetworkPolicy)
			if got.ManagedFields != nil {
				t.Errorf("managed fields kept: %v", got.ManagedFields)
			}
			if got.Name != "p" || got.Labels["a"] != "b" {
				t.Errorf("the rest of the object changed: %v", got.ObjectMeta)
			}
		})
	}
	if out, err := withoutManagedFields("tombstone"); err != nil || out != "tombstone" {
		t.Errorf("non-object: got %v, %v", out, err)
	}
}

// TestCacheOptionsFilterEveryChild: every kind of child the reconcilers
// apply is cached only with dossierguard's label, never cluster-wide, and
// the resources of the API and the reports without managed fields.
func TestCacheOptionsFilterEveryChild(t *testing.T) {
	opts := CacheOptions(ReportKinds{OpenReports: true, PolicyReports: true})
	managed := labels.Set{resources.LabelManagedBy: resources.ManagedByValue}
	other := labels.Set{resources.LabelManagedBy: "helm"}
	for obj, by := range opts.ByObject {
		kind := fmt.Sprintf("%T", obj)
		if strings.HasSuffix(reflect.TypeOf(obj).Elem().PkgPath(), "dossierguard/api/v1alpha1") {
			if by.Label != nil {
				t.Errorf("%s: the resources of the API are cached whole, not by label", kind)
			}
			continue
		}
		if by.Label == nil || !by.Label.Matches(managed) || by.Label.Matches(other) {
			t.Errorf("%s: cached without the managed-by selector (%v)", kind, by.Label)
		}
	}
	for _, kind := range []string{"*v1.Role", "*v1.RoleBinding", "*v1.NetworkPolicy", "*v1.PersistentVolumeClaim", "*v1.CronJob", "*v1.Secret", "*v1alpha1.DossierStore"} {
		found := false
		for obj := range opts.ByObject {
			found = found || fmt.Sprintf("%T", obj) == kind
		}
		if !found {
			t.Errorf("%s has no cache options", kind)
		}
	}
	// The reports are cached as metadata only: a typed or unstructured
	// report in the cache would hold every result again.
	reports := map[string]bool{}
	for obj := range opts.ByObject {
		switch o := obj.(type) {
		case *metav1.PartialObjectMetadata:
			reports[o.GroupVersionKind().Kind] = true
		case *openreportsv1alpha1.Report, *unstructured.Unstructured:
			t.Errorf("%T: a report kind cached with its content", obj)
		}
	}
	if !reports["Report"] || !reports["PolicyReport"] || len(reports) != 2 {
		t.Errorf("metadata-only kinds %v; want Report and PolicyReport", reports)
	}
}
