package controllers

import (
	"fmt"
	"slices"
	"testing"

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

// TestStoreTransitionEvents: an event for each change of Ready,
// EncryptionVerified or Compliant and for each new key version, none when
// only a message changed.
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
	cases := []struct {
		name          string
		before, after *v1alpha1.DossierStore
		want          []string
	}{
		{"first status", statusStore(), statusFor(nil), []string{
			"Normal StoreReady Reconcile: Ready=True: dossiers are stored on Verified storage with data key version 2 behind a default-deny network policy",
			`Normal VerifiedByParameters Reconcile: EncryptionVerified=True: StorageClass "encrypted-gp3" encrypts at rest: provisioner ebs.csi.aws.com with encrypted set`,
			"Normal AllControlsPass Reconcile: Compliant=True: all 12 controls pass",
		}},
		{"nothing changed", statusFor(nil), statusFor(nil), nil},
		{"only a message changed", statusFor(nil), statusFor(func(f *storeFacts) { f.audit = compliance.AuditControl(nil, 5, true, statusTransport) }), nil},
		{"a dependency failed", statusFor(nil), statusFor(func(f *storeFacts) { f.isolation = false }), []string{
			"Warning DependencyUnavailable Reconcile: Ready=False: not every child object could be applied; see the conditions and the operator's events",
			"Warning ControlFailed Reconcile: Compliant=False: NetworkSegregation (AVG art. 32(1)(b); BIO 8.22): the default-deny NetworkPolicy around the workload could not be applied",
		}},
		{"the class lost its attestation", statusFor(func(f *storeFacts) { f.encryption = attestedClass }), statusFor(func(f *storeFacts) { f.encryption, f.claim = plainClass, false }), []string{
			"Warning EncryptionUnverified Reconcile: Ready=False: " + plainClass.Message,
			"Warning NoEncryptionEvidence Reconcile: EncryptionVerified=False: " + plainClass.Message,
			"Warning ControlFailed Reconcile: Compliant=False: EncryptionAtRest (AVG art. 32(1)(a); BIO 8.24): " + plainClass.Message,
		}},
		{"a reason changed with the same status", statusFor(nil), statusFor(func(f *storeFacts) { f.encryption = attestedClass }), []string{
			`Normal AttestedByPlatformTeam Reconcile: EncryptionVerified=True: ` + attestedClass.Message,
		}},
		{"a new key version", statusFor(nil), statusFor(func(f *storeFacts) { f.key.Version, f.key.Versions = 3, 3 }), []string{
			"Normal KeyRotated RotateKey: data key version 3 added; earlier versions kept for decryption",
		}},
		{"the first key is not a rotation", statusFor(func(f *storeFacts) { f.key.Failed = true }), statusFor(nil), []string{
			"Normal StoreReady Reconcile: Ready=True: dossiers are stored on Verified storage with data key version 2 behind a default-deny network policy",
			"Normal AllControlsPass Reconcile: Compliant=True: all 12 controls pass",
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
