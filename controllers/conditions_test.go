package controllers

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// These tests call the status setters directly: pure functions of an
// object and facts, with no client. Condition types, statuses and reasons
// are compared with their literal strings, which are public vocabulary.

// statusNow is the fixed moment the setter tests run at.
var statusNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// wantCondition is what a table row expects of one condition.
type wantCondition struct {
	status string // "True" or "False"
	reason string
	// message lists substrings the message must contain.
	message []string
}

func assertCondition(t *testing.T, conditions []metav1.Condition, conditionType string, generation int64, want wantCondition) {
	t.Helper()
	c := meta.FindStatusCondition(conditions, conditionType)
	if c == nil {
		t.Errorf("no %s condition in %v", conditionType, conditionTypes(conditions))
		return
	}
	if string(c.Status) != want.status || c.Reason != want.reason {
		t.Errorf("%s = %s/%s (%q); want %s/%s", conditionType, c.Status, c.Reason, c.Message, want.status, want.reason)
	}
	if c.Reason == "" || c.Message == "" {
		t.Errorf("%s has reason %q and message %q; both are required", conditionType, c.Reason, c.Message)
	}
	for _, s := range want.message {
		if !strings.Contains(c.Message, s) {
			t.Errorf("%s message %q lacks %q", conditionType, c.Message, s)
		}
	}
	if c.ObservedGeneration != generation {
		t.Errorf("%s observedGeneration = %d; want %d", conditionType, c.ObservedGeneration, generation)
	}
}

func conditionTypes(conditions []metav1.Condition) []string {
	out := make([]string, 0, len(conditions))
	for _, c := range conditions {
		out = append(out, c.Type)
	}
	return out
}

func controlNames(controls []v1alpha1.ComplianceControl) []string {
	out := make([]string, 0, len(controls))
	for _, c := range controls {
		out = append(out, c.Control)
	}
	return out
}

func TestSetCondition(t *testing.T) {
	obj := &metav1.ObjectMeta{Generation: 7}
	var conditions []metav1.Condition

	setCondition(obj, &conditions, "NetworkIsolated", true, "DefaultDenyApplied", "default deny")
	assertCondition(t, conditions, "NetworkIsolated", 7, wantCondition{"True", "DefaultDenyApplied", []string{"default deny"}})
	setCondition(obj, &conditions, "AuditActive", false, "PodsNotListed", "not listed")
	assertCondition(t, conditions, "AuditActive", 7, wantCondition{"False", "PodsNotListed", []string{"not listed"}})
	if len(conditions) != 2 {
		t.Fatalf("conditions = %v; want two", conditionTypes(conditions))
	}

	// The same status again keeps the transition time, even with a new
	// generation, reason or message: nothing moves after convergence.
	stamp := metav1.NewTime(statusNow.Add(-time.Hour))
	conditions[0].LastTransitionTime = stamp
	obj.Generation = 8
	setCondition(obj, &conditions, "NetworkIsolated", true, "DefaultDenyApplied", "default deny, again")
	if c := meta.FindStatusCondition(conditions, "NetworkIsolated"); !c.LastTransitionTime.Equal(&stamp) {
		t.Errorf("lastTransitionTime moved from %s to %s without a change of status", stamp, c.LastTransitionTime)
	}
	assertCondition(t, conditions, "NetworkIsolated", 8, wantCondition{"True", "DefaultDenyApplied", []string{"again"}})

	// A flip of status moves it.
	setCondition(obj, &conditions, "NetworkIsolated", false, "IsolationNotApplied", "could not be applied")
	if c := meta.FindStatusCondition(conditions, "NetworkIsolated"); c.LastTransitionTime.Equal(&stamp) {
		t.Errorf("lastTransitionTime stayed %s although the status changed", stamp)
	}
	assertCondition(t, conditions, "NetworkIsolated", 8, wantCondition{"False", "IsolationNotApplied", nil})
	if len(conditions) != 2 {
		t.Errorf("conditions = %v; a type appears once", conditionTypes(conditions))
	}
}

func TestSetCompliantCondition(t *testing.T) {
	row := func(control, reference string, result v1alpha1.ComplianceResult, message string) v1alpha1.ComplianceControl {
		return v1alpha1.ComplianceControl{Control: control, Reference: reference, Result: result, Reason: "R", Message: message}
	}
	encryption := row("EncryptionAtRest", "AVG art. 32(1)(a); BIO 8.24", "Pass", "encrypted")
	cases := []struct {
		name     string
		controls []v1alpha1.ComplianceControl
		want     wantCondition
	}{
		{"every control passes", []v1alpha1.ComplianceControl{encryption, row("KeyManagement", "ref", "Pass", "current")},
			wantCondition{"True", "AllControlsPass", []string{"all 2 controls pass"}}},
		{"a failure names its control, reference and message", []v1alpha1.ComplianceControl{
			encryption, row("NetworkSegregation", "AVG art. 32(1)(b); BIO 8.22", "Fail", "the default-deny NetworkPolicy could not be applied")},
			wantCondition{"False", "ControlFailed", []string{"NetworkSegregation (AVG art. 32(1)(b); BIO 8.22): the default-deny NetworkPolicy could not be applied"}}},
		{"unknown is not compliant", []v1alpha1.ComplianceControl{encryption, row("AuditActive", "NEN 7513", "Unknown", "pods not listed")},
			wantCondition{"False", "ControlFailed", []string{"AuditActive (NEN 7513): pods not listed"}}},
		{"the first failure is reported", []v1alpha1.ComplianceControl{
			row("KeyManagement", "k", "Fail", "late"), row("AuditActive", "a", "Fail", "missing")},
			wantCondition{"False", "ControlFailed", []string{"KeyManagement (k): late"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var conditions []metav1.Condition
			setCompliantCondition(&metav1.ObjectMeta{Generation: 2}, &conditions, tc.controls)
			assertCondition(t, conditions, "Compliant", 2, tc.want)
			if len(conditions) != 1 {
				t.Errorf("conditions = %v; want only Compliant", conditionTypes(conditions))
			}
		})
	}
}
