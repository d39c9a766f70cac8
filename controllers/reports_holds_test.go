package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kptr "k8s.io/utils/ptr"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

func TestReportInStep(t *testing.T) {
	const hash = "5f2b9c"
	want := func() *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "dossierstore-a", Namespace: "n",
			Labels:          map[string]string{"app.kubernetes.io/managed-by": "dossierguard"},
			Annotations:     map[string]string{v1alpha1.AnnotationReportHash: hash},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "privacy.dossierguard.io/v1alpha1", Kind: "DossierStore", Name: "a", UID: "u", Controller: kptr.To(true)}}}}
	}
	entry := func(manager, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	cases := []struct {
		name string
		edit func(live, want *metav1.PartialObjectMetadata)
		want bool
	}{
		{"identical", func(_, _ *metav1.PartialObjectMetadata) {}, true},
		{"others' labels, annotations and owners are kept", func(l, _ *metav1.PartialObjectMetadata) {
			l.Labels["team"] = "privacy"
			l.Annotations["note"] = "x"
			l.OwnerReferences = append(l.OwnerReferences, metav1.OwnerReference{Kind: "ConfigMap", Name: "c", UID: "v"})
			l.ResourceVersion = "42"
		}, true},
		{"a label set by someone else", func(l, _ *metav1.PartialObjectMetadata) {
			l.ManagedFields = []metav1.ManagedFieldsEntry{entry("kubectl-label", `{"f:metadata":{"f:labels":{"f:team":{}}}}`)}
		}, true},
		{"dossierguard's own entry", func(l, _ *metav1.PartialObjectMetadata) {
			l.ManagedFields = []metav1.ManagedFieldsEntry{entry(resources.FieldOwner, `{"f:results":{},"f:summary":{}}`)}
		}, true},
		{"content changed: another hash", func(l, _ *metav1.PartialObjectMetadata) { l.Annotations[v1alpha1.AnnotationReportHash] = "0000" }, false},
		{"hash annotation gone", func(l, _ *metav1.PartialObjectMetadata) { delete(l.Annotations, v1alpha1.AnnotationReportHash) }, false},
		{"no hash wanted", func(l, w *metav1.PartialObjectMetadata) {
			delete(l.Annotations, v1alpha1.AnnotationReportHash)
			delete(w.Annotations, v1alpha1.AnnotationReportHash)
		}, false},
		{"results edited by someone else", func(l, _ *metav1.PartialObjectMetadata) {
			l.ManagedFields = []metav1.ManagedFieldsEntry{entry("kubectl-edit", `{"f:results":{}}`)}
		}, false},
		{"summary edited beside a label", func(l, _ *metav1.PartialObjectMetadata) {
			l.ManagedFields = []metav1.ManagedFieldsEntry{entry("kubectl-edit", `{"f:metadata":{"f:labels":{}},"f:summary":{"f:pass":{}}}`)}
		}, false},
		{"unreadable entry of another manager", func(l, _ *metav1.PartialObjectMetadata) {
			l.ManagedFields = []metav1.ManagedFieldsEntry{entry("other", `not json`)}
		}, false},
		{"a label of ours removed", func(l, _ *metav1.PartialObjectMetadata) { delete(l.Labels, "app.kubernetes.io/managed-by") }, false},
		{"owner reference lost", func(l, _ *metav1.PartialObjectMetadata) { l.OwnerReferences = nil }, false},
		{"owner reference no longer the controller", func(l, _ *metav1.PartialObjectMetadata) { l.OwnerReferences[0].Controller = nil }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			live, w := want(), want()
			c.edit(live, w)
			if got := reportInStep(live, w); got != c.want {
				t.Errorf("reportInStep = %v; want %v", got, c.want)
			}
		})
	}
}

// TestReportMetadataOf: the metadata of a report's apply configuration,
// the hash annotation included, as the writer compares it.
func TestReportMetadataOf(t *testing.T) {
	s := resources.ReportSubject{Kind: "DossierStore", Name: "a", Namespace: "n", UID: "u", Store: "a", Status: &v1alpha1.CommonStatus{
		Compliance: []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlEncryptionAtRest, Result: v1alpha1.ResultPass}}}}
	desired := resources.ComplianceReport(s)
	m, err := metadataOf(desired, resources.ReportGVK)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "dossierstore-a" || m.Namespace != "n" || m.GroupVersionKind() != resources.ReportGVK {
		t.Errorf("identity %s/%s %v", m.Namespace, m.Name, m.GroupVersionKind())
	}
	if h := m.Annotations[v1alpha1.AnnotationReportHash]; h == "" || h != resources.ReportContentHash(desired) {
		t.Errorf("hash annotation %q; want the content's", h)
	}
	if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].UID != "u" {
		t.Errorf("owners %v", m.OwnerReferences)
	}
	if !reportInStep(m, m) {
		t.Error("a report's own metadata is not in step with itself")
	}
}
