package compliance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// testNow is the fixed moment the table tests of this package run at.
var testNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// wantControl is what a table row expects of one ComplianceControl. Result
// and reason are compared with their literal strings, so that a renamed or
// moved constant cannot silently change the public vocabulary.
type wantControl struct {
	control string
	result  string
	reason  string
	// message lists substrings the message must contain (the object or
	// field it names, the numbers it reports).
	message []string
	// evidence is the exact evidence expected; nil means none.
	evidence []string
}

func assertControl(t *testing.T, got v1alpha1.ComplianceControl, want wantControl) {
	t.Helper()
	if got.Control != want.control {
		t.Errorf("control = %q; want %q", got.Control, want.control)
	}
	if got.Reference == "" || !strings.Contains(got.Reference, "AVG art.") {
		t.Errorf("control %s has reference %q; want the AVG article it serves", got.Control, got.Reference)
	}
	if string(got.Result) != want.result || got.Reason != want.reason {
		t.Errorf("result/reason = %s/%s (%q); want %s/%s", got.Result, got.Reason, got.Message, want.result, want.reason)
	}
	if got.Message == "" {
		t.Errorf("message is empty")
	}
	assertContains(t, "message", got.Message, want.message)
	if !slices.Equal(got.Evidence, want.evidence) {
		t.Errorf("evidence = %q; want %q", got.Evidence, want.evidence)
	}
}

// assertControls checks a list of controls row by row.
func assertControls(t *testing.T, got []v1alpha1.ComplianceControl, want ...wantControl) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d controls %+v; want %d", len(got), got, len(want))
	}
	for i := range want {
		assertControl(t, got[i], want[i])
	}
}

// assertContains reports each of want that text lacks.
func assertContains(t *testing.T, what, text string, want []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(text, s) {
			t.Errorf("%s %q lacks %q", what, text, s)
		}
	}
}

func TestReferences(t *testing.T) {
	want := map[string]string{
		"EncryptionAtRest":     "AVG art. 32(1)(a); BIO 8.24",
		"KeyManagement":        "AVG art. 32(1)(a); BIO 8.24",
		"KeyAccessRestricted":  "AVG art. 32(1)(b); BIO 8.3",
		"NetworkSegregation":   "AVG art. 32(1)(b); BIO 8.22",
		"AuditActive":          "AVG art. 5(2), art. 30; BIO 8.15; NEN 7513",
		"AuditSigningKey":      "AVG art. 5(2), art. 32(1)(b); BIO 8.15, 8.24; NEN 7513",
		"NeedToKnow":           "AVG art. 5(1)(c), art. 25; BIO 8.3",
		"BreakGlassReview":     "AVG art. 32(1)(d); BIO 5.18, 8.2",
		"AccessControlDefined": "AVG art. 25, art. 32(1)(b); BIO 5.15, 8.3",
		"Minimisation":         "AVG art. 5(1)(c)",
		"LawfulBasis":          "AVG art. 6(1), art. 9(2); BIO 5.34",
		"DataMinimisation":     "AVG art. 5(1)(c)",
		"TransferControl":      "AVG art. 5(1)(f); BIO 5.14, 8.22",
		"StatutoryRetention":   "AVG art. 5(1)(e); Jeugdwet art. 7.3.8; Archiefwet",
		"RetentionEnforced":    "AVG art. 5(1)(e), art. 17; BIO 8.10",
		"SharingEnforced":      "AVG art. 5(1)(b), art. 6(1), art. 7(3); BIO 5.14",
		"EgressGated":          "AVG art. 5(1)(b), art. 5(2), art. 30(1)(d); BIO 8.20, 8.22",
		"DataSubjectRights":    "AVG art. 12(3), art. 15-21",
		"ResponseDeadline":     "AVG art. 12(3)",
		"PurposeLimitation":    "AVG art. 5(1)(b), art. 5(1)(c), art. 30(1)(c)",
		"ActivityRetention":    "AVG art. 5(1)(e), art. 30(1)(f)",
	}
	for control, ref := range want {
		if got := References[control]; got != ref {
			t.Errorf("References[%q] = %q; want %q", control, got, ref)
		}
	}
	for control := range References {
		if _, ok := want[control]; !ok {
			t.Errorf("References has %q, which this test does not know: add it with its reference", control)
		}
	}
}

func TestAllPassAndFirstFailure(t *testing.T) {
	row := func(name string, r v1alpha1.ComplianceResult) v1alpha1.ComplianceControl {
		return v1alpha1.ComplianceControl{Control: name, Result: r}
	}
	cases := []struct {
		name     string
		controls []v1alpha1.ComplianceControl
		allPass  bool
		first    string // control name of the first failure, "" for none
	}{
		{"no controls is not compliant", nil, false, ""},
		{"empty list is not compliant", []v1alpha1.ComplianceControl{}, false, ""},
		{"one pass", []v1alpha1.ComplianceControl{row("a", "Pass")}, true, ""},
		{"all pass", []v1alpha1.ComplianceControl{row("a", "Pass"), row("b", "Pass"), row("c", "Pass")}, true, ""},
		{"one fail", []v1alpha1.ComplianceControl{row("a", "Pass"), row("b", "Fail"), row("c", "Pass")}, false, "b"},
		{"unknown is not a pass", []v1alpha1.ComplianceControl{row("a", "Pass"), row("b", "Unknown")}, false, "b"},
		{"first of several failures", []v1alpha1.ComplianceControl{row("a", "Unknown"), row("b", "Fail")}, false, "a"},
		{"empty result is not a pass", []v1alpha1.ComplianceControl{row("a", "")}, false, "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := AllPass(tc.controls); got != tc.allPass {
				t.Errorf("AllPass = %v; want %v", got, tc.allPass)
			}
			got := FirstFailure(tc.controls)
			switch {
			case tc.first == "" && got != nil:
				t.Errorf("FirstFailure = %+v; want nil", *got)
			case tc.first != "" && (got == nil || got.Control != tc.first):
				t.Errorf("FirstFailure = %+v; want control %q", got, tc.first)
			case got != nil && got != &tc.controls[slices.IndexFunc(tc.controls, func(c v1alpha1.ComplianceControl) bool { return c.Control == tc.first })]:
				t.Errorf("FirstFailure returned a copy, not the row in the list")
			}
		})
	}
}
