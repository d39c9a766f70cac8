package controllers

import (
	"encoding/json"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// ownContent is the content part of dossierguard's managed-fields entry of
// a report it applied, as the API server records it (scope and results
// atomic, the summary field by field).
const ownContent = `{"f:results":{},"f:scope":{},"f:source":{},"f:summary":{".":{},"f:error":{},"f:fail":{},"f:pass":{},"f:skip":{},"f:warn":{}}}`

func entry(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsV1: metav1.NewFieldsV1(fields)}
}

// wantedStoreReport is the report of a store with one passing control, and
// the same report as the cache holds it after dossierguard applied it.
func wantedStoreReport(t *testing.T) (wantedReport, *metav1.PartialObjectMetadata) {
	t.Helper()
	s := resources.ReportSubject{Kind: "DossierStore", Name: "a", Namespace: "n", UID: "u", Store: "a", Status: &v1alpha1.CommonStatus{
		Compliance: []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlEncryptionAtRest, Result: v1alpha1.ResultPass}}}}
	want, err := wantedReportOf(resources.ComplianceReport(s), resources.ReportGVK)
	if err != nil {
		t.Fatal(err)
	}
	live := want.meta.DeepCopy()
	live.ResourceVersion = "7"
	live.ManagedFields = []metav1.ManagedFieldsEntry{entry(resources.FieldOwner, metav1.ManagedFieldsOperationApply, ownContent)}
	return want, live
}

func TestReportInStep(t *testing.T) {
	cases := []struct {
		name string
		edit func(live *metav1.PartialObjectMetadata, want *wantedReport)
		want bool
	}{
		{"as applied", func(*metav1.PartialObjectMetadata, *wantedReport) {}, true},
		{"others' labels, annotations and owners are kept", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.Labels["team"] = "privacy"
			l.Annotations["note"] = "x"
			l.OwnerReferences = append(l.OwnerReferences, metav1.OwnerReference{Kind: "ConfigMap", Name: "c", UID: "v"})
		}, true},
		{"a label set by someone else", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields = append(l.ManagedFields, entry("kubectl-label", metav1.ManagedFieldsOperationUpdate, `{"f:metadata":{"f:labels":{"f:team":{}}}}`))
		}, true},
		{"content changed: another hash", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.Annotations[v1alpha1.AnnotationReportHash] = "0000"
		}, false},
		{"hash annotation gone", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			delete(l.Annotations, v1alpha1.AnnotationReportHash)
		}, false},
		{"no hash wanted", func(l *metav1.PartialObjectMetadata, w *wantedReport) {
			delete(l.Annotations, v1alpha1.AnnotationReportHash)
			delete(w.meta.Annotations, v1alpha1.AnnotationReportHash)
		}, false},
		{"results edited by someone else", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields = append(l.ManagedFields, entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, `{"f:results":{}}`))
		}, false},
		{"summary edited beside a label", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields = append(l.ManagedFields, entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, `{"f:metadata":{"f:labels":{}},"f:summary":{"f:pass":{}}}`))
		}, false},
		{"unreadable entry of another manager", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields = append(l.ManagedFields, entry("other", metav1.ManagedFieldsOperationUpdate, `not json`))
		}, false},
		{"a summary field removed by someone else", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields[0].FieldsV1.SetRawString(`{"f:results":{},"f:scope":{},"f:source":{},"f:summary":{".":{},"f:error":{},"f:fail":{},"f:skip":{},"f:warn":{}}}`)
		}, false},
		{"the scope removed by someone else", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields[0].FieldsV1.SetRawString(`{"f:results":{},"f:source":{},"f:summary":{"f:error":{},"f:fail":{},"f:pass":{},"f:skip":{},"f:warn":{}}}`)
		}, false},
		{"no applied entry of dossierguard's", func(l *metav1.PartialObjectMetadata, _ *wantedReport) {
			l.ManagedFields[0].Operation = metav1.ManagedFieldsOperationUpdate
		}, false},
		{"a label of ours removed", func(l *metav1.PartialObjectMetadata, _ *wantedReport) { delete(l.Labels, resources.LabelManagedBy) }, false},
		{"owner reference lost", func(l *metav1.PartialObjectMetadata, _ *wantedReport) { l.OwnerReferences = nil }, false},
		{"owner reference no longer the controller", func(l *metav1.PartialObjectMetadata, _ *wantedReport) { l.OwnerReferences[0].Controller = nil }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, live := wantedStoreReport(t)
			c.edit(live, &want)
			if got := reportInStep(live, want); got != c.want {
				t.Errorf("reportInStep = %v; want %v", got, c.want)
			}
		})
	}
}

// TestWantedReportOf: the metadata and content of a report's apply
// configuration, the hash annotation included, as the writer compares them.
func TestWantedReportOf(t *testing.T) {
	s := resources.ReportSubject{Kind: "DossierStore", Name: "a", Namespace: "n", UID: "u", Store: "a", Status: &v1alpha1.CommonStatus{
		Compliance: []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlEncryptionAtRest, Result: v1alpha1.ResultPass}}}}
	desired := resources.ComplianceReport(s)
	w, err := wantedReportOf(desired, resources.ReportGVK)
	if err != nil {
		t.Fatal(err)
	}
	if w.meta.Name != "dossierstore-a" || w.meta.Namespace != "n" || w.meta.GroupVersionKind() != resources.ReportGVK {
		t.Errorf("identity %s/%s %v", w.meta.Namespace, w.meta.Name, w.meta.GroupVersionKind())
	}
	if h := w.meta.Annotations[v1alpha1.AnnotationReportHash]; h == "" || h != resources.ReportContentHash(desired) {
		t.Errorf("hash annotation %q; want the content's", h)
	}
	if len(w.meta.OwnerReferences) != 1 || w.meta.OwnerReferences[0].UID != "u" {
		t.Errorf("owners %v", w.meta.OwnerReferences)
	}
	var fields []string
	for k := range w.content {
		fields = append(fields, k)
	}
	if len(fields) != 4 || w.content["results"] == nil || w.content["summary"] == nil || w.content["scope"] == nil || w.content["source"] == nil {
		t.Errorf("content fields %v; want source, scope, summary and results", fields)
	}
}

func TestReportContentFields(t *testing.T) {
	cases := []struct {
		name string
		in   []metav1.ManagedFieldsEntry
		want map[string]string
	}{
		{"metadata dropped from every entry, entries with only metadata dropped", []metav1.ManagedFieldsEntry{
			entry(resources.FieldOwner, metav1.ManagedFieldsOperationApply, `{"f:metadata":{"f:labels":{"f:a":{}}},"f:results":{},"f:source":{}}`),
			entry("kubectl-label", metav1.ManagedFieldsOperationUpdate, `{"f:metadata":{"f:labels":{"f:team":{}}}}`),
			entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, `{"f:metadata":{"f:labels":{}},"f:summary":{"f:pass":{}}}`),
		}, map[string]string{resources.FieldOwner: `{"f:results":{},"f:source":{}}`, "kubectl-edit": `{"f:summary":{"f:pass":{}}}`}},
		{"an unreadable entry is kept whole", []metav1.ManagedFieldsEntry{entry("other", metav1.ManagedFieldsOperationUpdate, `not json`)},
			map[string]string{"other": `not json`}},
		{"none", nil, map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "r", ManagedFields: c.in}}
			out, err := reportContentFields(in)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range out.(*metav1.PartialObjectMetadata).ManagedFields {
				got[e.Manager] = e.FieldsV1.GetRawString()
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("kept %v; want %v", got, c.want)
			}
		})
	}
	if out, err := reportContentFields("tombstone"); err != nil || out != "tombstone" {
		t.Errorf("non-object: got %v, %v", out, err)
	}
	// What the cache keeps of a report as applied is still in step.
	want, live := wantedStoreReport(t)
	raw, _ := json.Marshal(map[string]any{"f:metadata": map[string]any{"f:labels": map[string]any{}}})
	live.ManagedFields = append(live.ManagedFields, entry("kubectl-label", metav1.ManagedFieldsOperationUpdate, string(raw)))
	out, _ := reportContentFields(live)
	if !reportInStep(out.(*metav1.PartialObjectMetadata), want) {
		t.Error("a report as applied, trimmed for the cache, is not in step")
	}
}
