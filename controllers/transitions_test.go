package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// recordedEvents keeps events as "type reason action: note".
type recordedEvents struct{ events []string }

func (r *recordedEvents) Eventf(_ runtime.Object, _ runtime.Object, eventType, reason, action, note string, args ...interface{}) {
	r.events = append(r.events, fmt.Sprintf("%s %s %s: %s", eventType, reason, action, fmt.Sprintf(note, args...)))
}

func (r *recordedEvents) AnnotatedEventf(o runtime.Object, related runtime.Object, _ map[string]string, eventType, reason, action, note string, args ...interface{}) {
	r.Eventf(o, related, eventType, reason, action, note, args...)
}

// TestStoreTransitionEvents: one event for the changes of Ready,
// EncryptionVerified and Compliant that one status write made, a Warning
// under the first failing condition's reason when any is not True; one
// for each new key version; none when only a message changed.
func TestStoreTransitionEvents(t *testing.T) {
	statusFor := func(mutate func(*storeFacts)) *v1alpha1.DossierStore {
		s := statusStore()
		f := convergedFacts()
		if mutate != nil {
			mutate(&f)
		}
		setStoreStatus(s, f)
		return s
	}
	// A workload pod without the audit proxy: AuditActive fails.
	failing := statusFor(func(f *storeFacts) { f.audit = compliance.AuditControl([]string{"app-0"}, 1, true, statusTransport) })
	failingMessage := meta.FindStatusCondition(failing.Status.Conditions, v1alpha1.ConditionCompliant).Message
	if c := meta.FindStatusCondition(failing.Status.Conditions, v1alpha1.ConditionCompliant); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonControlFailed {
		t.Fatalf("Compliant %s %s; the case needs a failing control", c.Status, c.Reason)
	}
	cases := []struct {
		name          string
		before, after *v1alpha1.DossierStore
		want          []string
	}{
		{"first status", statusStore(), statusFor(nil), []string{
			"Normal StoreReady Reconcile: Ready=True: dossiers are stored on Verified storage with data key version 2 behind a default-deny network policy; " +
				`EncryptionVerified=True: StorageClass "encrypted-gp3" encrypts at rest: provisioner ebs.csi.aws.com with encrypted set; ` +
				"Compliant=True: all 12 controls pass",
		}},
		{"first status with a failing control", statusStore(), failing, []string{
			"Warning ControlFailed Reconcile: Compliant=False: " + failingMessage + "; " +
				"Ready=True: dossiers are stored on Verified storage with data key version 2 behind a default-deny network policy; " +
				`EncryptionVerified=True: StorageClass "encrypted-gp3" encrypts at rest: provisioner ebs.csi.aws.com with encrypted set`,
		}},
		{"nothing changed", statusFor(nil), statusFor(nil), nil},
		{"only a message changed", statusFor(nil), statusFor(func(f *storeFacts) { f.audit = compliance.AuditControl(nil, 5, true, statusTransport) }), nil},
		{"a dependency failed", statusFor(nil), statusFor(func(f *storeFacts) { f.isolation = false }), []string{
			"Warning DependencyUnavailable Reconcile: Ready=False: not every child object could be applied; see the conditions and the operator's events; " +
				"Compliant=False: NetworkSegregation (AVG art. 32(1)(b); BIO 8.22): the default-deny NetworkPolicy around the workload could not be applied",
		}},
		{"the class lost its attestation", statusFor(func(f *storeFacts) { f.encryption = attestedClass }), statusFor(func(f *storeFacts) { f.encryption, f.claim = plainClass, false }), []string{
			"Warning EncryptionUnverified Reconcile: Ready=False: " + plainClass.Message + "; " +
				"EncryptionVerified=False: " + plainClass.Message + "; " +
				"Compliant=False: EncryptionAtRest (AVG art. 32(1)(a); BIO 8.24): " + plainClass.Message,
		}},
		{"compliance is restored", failing, statusFor(nil), []string{"Normal AllControlsPass Reconcile: Compliant=True: all 12 controls pass"}},
		{"a reason changed with the same status", statusFor(nil), statusFor(func(f *storeFacts) { f.encryption = attestedClass }), []string{
			`Normal AttestedByPlatformTeam Reconcile: EncryptionVerified=True: ` + attestedClass.Message,
		}},
		{"a new key version", statusFor(nil), statusFor(func(f *storeFacts) { f.key.Version, f.key.Versions = 3, 3 }), []string{
			"Normal KeyRotated RotateKey: data key version 3 added; earlier versions kept for decryption",
		}},
		{"the first key is not a rotation", statusFor(func(f *storeFacts) { f.key.Failed = true }), statusFor(nil), []string{
			"Normal StoreReady Reconcile: Ready=True: dossiers are stored on Verified storage with data key version 2 behind a default-deny network policy; " +
				"Compliant=True: all 12 controls pass",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := &recordedEvents{}
			(&DossierStoreReconciler{Recorder: events}).recordTransitions(tc.before, tc.after)
			if !slices.Equal(events.events, tc.want) {
				t.Errorf("events =\n%q\nwant\n%q", events.events, tc.want)
			}
		})
	}
}

// TestAgreementTransitionEvents: sharing starts and stops with an event;
// stops for a broken rule are warnings.
func TestAgreementTransitionEvents(t *testing.T) {
	statusFor := func(v compliance.AgreementVerdict, policyExists bool) *v1alpha1.SharingAgreement {
		a := statusAgreement()
		v.Controls = agreementControls("")
		setAgreementStatus(a, v, policyExists, false)
		return a
	}
	inForce := statusFor(compliance.AgreementVerdict{InForce: true, Reason: "InForce", Message: "sharing [plan] with De Linde"}, true)
	cases := []struct {
		name          string
		before, after *v1alpha1.SharingAgreement
		want          []string
	}{
		{"sharing starts", statusAgreement(), inForce, []string{"Normal SharingStarted Share: sharing [plan] with De Linde"}},
		{"still in force", inForce, inForce, nil},
		{"suspended", inForce, statusFor(compliance.AgreementVerdict{Reason: "Suspended", Message: "the agreement is suspended"}, false),
			[]string{"Normal Suspended StopSharing: the agreement is suspended"}},
		{"expired", inForce, statusFor(compliance.AgreementVerdict{Reason: "Expired", Message: "the agreement expired at 2026-03-15T12:00:00Z"}, false),
			[]string{"Normal Expired StopSharing: the agreement expired at 2026-03-15T12:00:00Z"}},
		{"review overdue is a warning", inForce, statusFor(compliance.AgreementVerdict{Reason: "ReviewOverdue", Message: "due for review"}, false),
			[]string{"Warning ReviewOverdue StopSharing: due for review"}},
		{"minimisation is a warning", statusAgreement(), statusFor(compliance.AgreementVerdict{Reason: "MinimisationViolated", Message: "too much"}, false),
			[]string{"Warning MinimisationViolated StopSharing: too much"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := &recordedEvents{}
			(&SharingAgreementReconciler{Recorder: events}).recordTransitions(tc.before, tc.after)
			if !slices.Equal(events.events, tc.want) {
				t.Errorf("events =\n%q\nwant\n%q", events.events, tc.want)
			}
		})
	}
}

// TestTruncateNote: a note longer than an Event may hold is cut on a rune
// boundary and marked; a short one is kept whole.
func TestTruncateNote(t *testing.T) {
	long := strings.Repeat("é", 600) // 1,200 bytes
	cases := []struct {
		name, in string
		limit    int
		want     string
	}{
		{"short", "Ready=True: ok", 1024, "Ready=True: ok"},
		{"exactly the limit", strings.Repeat("a", 1024), 1024, strings.Repeat("a", 1024)},
		{"cut between runes", long, 1024, strings.Repeat("é", 510) + "…"},
		{"cut inside a rune moves back", "ab" + long, 1024, "ab" + strings.Repeat("é", 509) + "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := truncateNote(tc.in, tc.limit)
			if got != tc.want || len(got) > tc.limit || !utf8.ValidString(got) {
				t.Errorf("truncateNote = %d bytes, want %d bytes (valid UTF-8 %v)", len(got), len(tc.want), utf8.ValidString(got))
			}
		})
	}
}
