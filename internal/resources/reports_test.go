package resources

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func reportSubject(controls ...v1alpha1.ComplianceControl) ReportSubject {
	return ReportSubject{
		Kind: "DossierStore", Name: "cjg-dossiers", Namespace: "cjg", UID: "0b6f5a1e-uid", Store: "cjg-dossiers",
		Status: &v1alpha1.CommonStatus{
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionCompliant, Status: metav1.ConditionFalse,
				LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC))}},
			Compliance: controls,
		},
	}
}

// typedReport decodes the apply configuration as the API server stores it.
func typedReport(t *testing.T, s ReportSubject) openreportsv1alpha1.Report {
	t.Helper()
	data, err := json.Marshal(ComplianceReport(s))
	if err != nil {
		t.Fatal(err)
	}
	var r openreportsv1alpha1.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestComplianceReportResults(t *testing.T) {
	pass := v1alpha1.ComplianceControl{Control: v1alpha1.ControlEncryptionAtRest, Reference: "AVG art. 32(1)(a); BIO 8.24",
		Result: v1alpha1.ResultPass, Reason: "EncryptionVerified", Message: "the StorageClass encrypts at rest",
		Evidence: []string{"StorageClass/encrypted-ssd: encrypted=true", "PersistentVolumeClaim/cjg-dossiers-dossiers"}}
	fail := v1alpha1.ComplianceControl{Control: v1alpha1.ControlAuditActive, Reference: "AVG art. 5(2), art. 30; BIO 8.15; NEN 7513",
		Result: v1alpha1.ResultFail, Reason: "PodsNotAudited", Message: "1 workload pod runs without the audit proxy"}
	unknown := v1alpha1.ComplianceControl{Control: v1alpha1.ControlRetentionEnforced, Reference: "AVG art. 5(1)(e), art. 17; BIO 8.10",
		Result: v1alpha1.ResultUnknown, Reason: "RetentionPoliciesNotListed"}
	cases := []struct {
		name     string
		controls []v1alpha1.ComplianceControl
		summary  openreportsv1alpha1.ReportSummary
		results  []openreportsv1alpha1.Result
	}{
		{"no controls yet", nil, openreportsv1alpha1.ReportSummary{}, nil},
		{"all pass", []v1alpha1.ComplianceControl{pass}, openreportsv1alpha1.ReportSummary{Pass: 1}, []openreportsv1alpha1.Result{"pass"}},
		{"a failure", []v1alpha1.ComplianceControl{pass, fail}, openreportsv1alpha1.ReportSummary{Pass: 1, Fail: 1}, []openreportsv1alpha1.Result{"pass", "fail"}},
		{"unknown is an error, never a pass", []v1alpha1.ComplianceControl{unknown, pass, fail},
			openreportsv1alpha1.ReportSummary{Pass: 1, Fail: 1, Error: 1}, []openreportsv1alpha1.Result{"error", "pass", "fail"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := typedReport(t, reportSubject(c.controls...))
			if r.Summary != c.summary {
				t.Errorf("summary %+v; want %+v", r.Summary, c.summary)
			}
			if len(r.Results) != len(c.results) {
				t.Fatalf("%d results; want %d", len(r.Results), len(c.results))
			}
			for i, res := range r.Results {
				ctl := c.controls[i]
				if res.Result != c.results[i] || res.Policy != ctl.Control || res.Category != ctl.Reference ||
					res.Source != v1alpha1.ReportSource || res.Description != ctl.Message {
					t.Errorf("result %d = %+v; want %s for %s (%s)", i, res, c.results[i], ctl.Control, ctl.Reference)
				}
				if res.Timestamp.Seconds != time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC).Unix() {
					t.Errorf("result %d timestamp %v; want when Compliant last changed", i, res.Timestamp)
				}
			}
		})
	}
}

func TestComplianceReportMetadata(t *testing.T) {
	r := typedReport(t, reportSubject())
	if r.Name != "dossierstore-cjg-dossiers" || r.Namespace != "cjg" || r.Source != v1alpha1.ReportSource {
		t.Errorf("report %s/%s source %q", r.Namespace, r.Name, r.Source)
	}
	if r.Scope == nil || r.Scope.Kind != "DossierStore" || r.Scope.Name != "cjg-dossiers" || r.Scope.Namespace != "cjg" ||
		r.Scope.UID != "0b6f5a1e-uid" || r.Scope.APIVersion != v1alpha1.GroupVersion.String() {
		t.Errorf("scope %+v; want the store", r.Scope)
	}
	if len(r.OwnerReferences) != 1 || r.OwnerReferences[0].UID != "0b6f5a1e-uid" || r.OwnerReferences[0].Controller == nil || !*r.OwnerReferences[0].Controller {
		t.Errorf("owner references %+v; want the store as controller", r.OwnerReferences)
	}
	if r.Labels[LabelManagedBy] != ManagedByValue || r.Labels[v1alpha1.LabelStore] != "cjg-dossiers" || r.Labels[LabelComponent] != ReportComponent {
		t.Errorf("labels %v", r.Labels)
	}
}

func TestReportProperties(t *testing.T) {
	cases := []struct {
		name string
		c    v1alpha1.ComplianceControl
		want map[string]string
	}{
		{"nothing", v1alpha1.ComplianceControl{}, nil},
		{"reason only", v1alpha1.ComplianceControl{Reason: "AllPass"}, map[string]string{"reason": "AllPass"}},
		{"evidence in order", v1alpha1.ComplianceControl{Reason: "Isolated", Evidence: []string{"NetworkPolicy/a", "NetworkPolicy/b"}},
			map[string]string{"reason": "Isolated", "evidence.1": "NetworkPolicy/a", "evidence.2": "NetworkPolicy/b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ReportProperties(c.c)
			if len(got) != len(c.want) {
				t.Fatalf("%v; want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q; want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestReportName(t *testing.T) {
	long := strings.Repeat("a", 250)
	cases := []struct{ kind, name, want string }{
		{"DossierStore", "cjg-dossiers", "dossierstore-cjg-dossiers"},
		{"SharingAgreement", "verwijsindex", "sharingagreement-verwijsindex"},
		{"RetentionPolicy", long, "retentionpolicy-the-uid"},
	}
	for _, c := range cases {
		if got := ReportName(c.kind, c.name, "the-uid"); got != c.want || len(got) > maxNameLen {
			t.Errorf("ReportName(%s, %.20s...) = %.40s; want %.40s", c.kind, c.name, got, c.want)
		}
	}
}

func TestCompliancePolicyReportSameFields(t *testing.T) {
	s := reportSubject(v1alpha1.ComplianceControl{Control: v1alpha1.ControlEncryptionAtRest, Reference: "AVG art. 32(1)(a); BIO 8.24",
		Result: v1alpha1.ResultFail, Reason: "NotVerified"})
	u, err := CompliancePolicyReport(s)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "wgpolicyk8s.io/v1alpha2" || u.GetKind() != "PolicyReport" || u.GetName() != "dossierstore-cjg-dossiers" {
		t.Errorf("%s %s %s", u.GetAPIVersion(), u.GetKind(), u.GetName())
	}
	if _, ok := u.Object["source"]; ok {
		t.Error("a report-level source, which the PolicyReport schema does not have")
	}
	results, _ := u.Object["results"].([]any)
	if len(results) != 1 || results[0].(map[string]any)["result"] != "fail" || results[0].(map[string]any)["category"] != "AVG art. 32(1)(a); BIO 8.24" ||
		results[0].(map[string]any)["source"] != v1alpha1.ReportSource {
		t.Errorf("results %v", results)
	}
	if summary := u.Object["summary"].(map[string]any); summary["fail"] != float64(1) {
		t.Errorf("summary %v", summary)
	}
}

// TestReportContentHash: the hash annotation changes with what the report
// says, and only with that; a PolicyReport carries the report's.
func TestReportContentHash(t *testing.T) {
	pass := v1alpha1.ComplianceControl{Control: v1alpha1.ControlEncryptionAtRest, Reference: "AVG art. 32(1)(a); BIO 8.24",
		Result: v1alpha1.ResultPass, Reason: "EncryptionVerified", Message: "the StorageClass encrypts at rest",
		Evidence: []string{"StorageClass/encrypted-ssd: encrypted=true"}}
	hashOf := func(s ReportSubject) string {
		h := ComplianceReport(s).Annotations[v1alpha1.AnnotationReportHash]
		if len(h) != 64 {
			t.Fatalf("hash annotation %q; want 64 hex digits", h)
		}
		return h
	}
	base := hashOf(reportSubject(pass))
	if again := hashOf(reportSubject(pass)); again != base {
		t.Errorf("the same content hashed twice: %s, %s", base, again)
	}
	changed := map[string]func(*ReportSubject){
		"result":  func(s *ReportSubject) { s.Status.Compliance[0].Result = v1alpha1.ResultFail },
		"message": func(s *ReportSubject) { s.Status.Compliance[0].Message = "other" },
		"evidence": func(s *ReportSubject) {
			s.Status.Compliance[0].Evidence = append(s.Status.Compliance[0].Evidence, "PVC/x")
		},
		"reason": func(s *ReportSubject) { s.Status.Compliance[0].Reason = "Other" },
		"control added": func(s *ReportSubject) {
			s.Status.Compliance = append(s.Status.Compliance, v1alpha1.ComplianceControl{Control: v1alpha1.ControlAuditActive, Result: v1alpha1.ResultPass})
		},
		"timestamp": func(s *ReportSubject) {
			s.Status.Conditions[0].LastTransitionTime = metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		},
		"scope": func(s *ReportSubject) { s.UID = "other-uid" },
	}
	for name, edit := range changed {
		s := reportSubject(pass)
		s.Status.Compliance[0].Evidence = slices.Clone(pass.Evidence)
		edit(&s)
		if hashOf(s) == base {
			t.Errorf("%s changed, the hash did not", name)
		}
	}
	// The store label is metadata, compared as such, not content.
	s := reportSubject(pass)
	s.Store = "other"
	if hashOf(s) != base {
		t.Error("the hash changed with a label")
	}
	u, err := CompliancePolicyReport(reportSubject(pass))
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAnnotations()[v1alpha1.AnnotationReportHash] != base {
		t.Errorf("PolicyReport hash %q; want the report's %s", u.GetAnnotations()[v1alpha1.AnnotationReportHash], base)
	}
}
