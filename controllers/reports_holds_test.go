package controllers

import (
	"testing"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kptr "k8s.io/utils/ptr"
)

func TestReportHolds(t *testing.T) {
	want := func() *openreportsv1alpha1.Report {
		return &openreportsv1alpha1.Report{
			ObjectMeta: metav1.ObjectMeta{Name: "dossierstore-a", Namespace: "n",
				Labels:          map[string]string{"app.kubernetes.io/managed-by": "dossierguard"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "privacy.dossierguard.io/v1alpha1", Kind: "DossierStore", Name: "a", UID: "u", Controller: kptr.To(true)}}},
			Source:  "dossierguard",
			Scope:   &corev1.ObjectReference{Kind: "DossierStore", Name: "a", UID: "u"},
			Summary: openreportsv1alpha1.ReportSummary{Pass: 1},
			Results: []openreportsv1alpha1.ReportResult{{Source: "dossierguard", Policy: "EncryptionAtRest", Result: "pass",
				Properties: map[string]string{"reason": "Verified"}}},
		}
	}
	cases := []struct {
		name string
		edit func(live *openreportsv1alpha1.Report)
		want bool
	}{
		{"identical", func(*openreportsv1alpha1.Report) {}, true},
		{"others' labels, annotations and owners are kept", func(l *openreportsv1alpha1.Report) {
			l.Labels["team"] = "privacy"
			l.Annotations = map[string]string{"note": "x"}
			l.OwnerReferences = append(l.OwnerReferences, metav1.OwnerReference{Kind: "ConfigMap", Name: "c", UID: "v"})
			l.ResourceVersion = "42"
		}, true},
		{"a label of ours removed", func(l *openreportsv1alpha1.Report) { delete(l.Labels, "app.kubernetes.io/managed-by") }, false},
		{"owner reference lost", func(l *openreportsv1alpha1.Report) { l.OwnerReferences = nil }, false},
		{"result edited", func(l *openreportsv1alpha1.Report) { l.Results[0].Result = "fail" }, false},
		{"property edited", func(l *openreportsv1alpha1.Report) { l.Results[0].Properties["reason"] = "Other" }, false},
		{"result added", func(l *openreportsv1alpha1.Report) { l.Results = append(l.Results, l.Results[0]) }, false},
		{"summary edited", func(l *openreportsv1alpha1.Report) { l.Summary.Fail = 1 }, false},
		{"scope edited", func(l *openreportsv1alpha1.Report) { l.Scope.Name = "b" }, false},
		{"source edited", func(l *openreportsv1alpha1.Report) { l.Source = "kyverno" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			live := want()
			c.edit(live)
			if got := reportHolds(live, want()); got != c.want {
				t.Errorf("reportHolds = %v; want %v", got, c.want)
			}
		})
	}
}
