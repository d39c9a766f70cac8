package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

// requestEvent waits for an Event of the request with the type and reason
// whose note contains text, and checks that no Event names the dossier.
func requestEvent(t *testing.T, r *v1alpha1.DataSubjectRequest, typ, reason, text string) func() error {
	return func() error {
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(r.Namespace)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if strings.Contains(e.Note, string(r.Spec.Dossier)) {
				t.Errorf("event %s names the dossier: %q", e.Reason, e.Note)
			}
			if e.Regarding.Name == r.Name && e.Type == typ && e.Reason == reason && strings.Contains(e.Note, text) {
				return nil
			}
		}
		return fmt.Errorf("no %s %s event for %s containing %q among %d events", typ, reason, r.Name, text, len(events.Items))
	}
}

// TestRetentionExtensionStatus: a granted RetentionExtension request within
// the store's cap is InEffect with the day it keeps the dossier until, its
// ExtensionWithinCap condition True and an EffectStarted Event; one whose end
// date lies beyond the cap is not Ready, says so naming the fields, keeps the
// dossier only until the cap allows and gets a Warning Event; one whose end
// date has passed is Ended. No status, condition or Event holds the dossier.
func TestRetentionExtensionStatus(t *testing.T) {
	ns := newNamespace(t)
	class := encryptedClass(t)
	newStore(t, ns, class.Name, func(s *v1alpha1.DossierStore) {
		s.Spec.DataSubjectRights = &v1alpha1.DataSubjectRightsSpec{MaxRetentionExtension: "P1Y"}
	})
	now := time.Now().Truncate(time.Second)
	extension := func(name, until string, received time.Time) *v1alpha1.DataSubjectRequest {
		return newRequest(t, ns, name, received, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Type = v1alpha1.RequestRetentionExtension
			r.Spec.RetentionExtension = &v1alpha1.RetentionExtensionSpec{Until: until, Reference: "BRIEF-2026-118"}
			r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(received.Add(time.Hour))}
		})
	}
	day := func(t time.Time) string { return dsr.DateOf(t).String() }

	within := extension("langer-bewaren", day(now.AddDate(0, 6, 0)), now.Add(-2*time.Hour))
	eventually(t, 20*time.Second, requestCondition(within, v1alpha1.ConditionExtensionWithinCap, metav1.ConditionTrue, v1alpha1.ReasonEndDateWithinCap))
	if within.Status.State != v1alpha1.StateInEffect {
		t.Errorf("within the cap: state %q, want InEffect", within.Status.State)
	}
	if ext := within.Status.RetentionExtension; ext == nil || ext.KeptUntil != within.Spec.RetentionExtension.Until || ext.MaxRetentionExtension != "P1Y" ||
		!ext.EndsAt.Time.Equal(dsr.DateOf(now.AddDate(0, 6, 0)).Start().AddDate(0, 0, 1)) {
		t.Errorf("within the cap: status.retentionExtension %+v, want kept until %s under P1Y", ext, within.Spec.RetentionExtension.Until)
	}
	eventually(t, 20*time.Second, requestCondition(within, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRequestTracked))
	eventually(t, 20*time.Second, requestEvent(t, within, "Normal", v1alpha1.ReasonEffectStarted, "the retention sweeper keeps the dossier's records until its end date"))

	beyond := extension("te-lang-bewaren", day(now.AddDate(3, 0, 0)), now.Add(-2*time.Hour))
	eventually(t, 20*time.Second, requestCondition(beyond, v1alpha1.ConditionExtensionWithinCap, metav1.ConditionFalse, v1alpha1.ReasonEndDateBeyondCap))
	eventually(t, 20*time.Second, requestCondition(beyond, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonEndDateBeyondCap))
	capDay := day(beyond.Spec.Decision.DecidedAt.AddDate(1, 0, 0))
	for _, c := range beyond.Status.Conditions {
		if c.Type == v1alpha1.ConditionExtensionWithinCap && !strings.Contains(c.Message, "spec.retentionExtension.until "+beyond.Spec.RetentionExtension.Until+" lies beyond the store's spec.dataSubjectRights.maxRetentionExtension P1Y") {
			t.Errorf("beyond the cap: message %q does not name the fields", c.Message)
		}
		if strings.Contains(c.Message, pseudonymA) {
			t.Errorf("condition %s names the dossier", c.Type)
		}
	}
	if ext := beyond.Status.RetentionExtension; ext == nil || ext.KeptUntil != capDay {
		t.Errorf("beyond the cap: status.retentionExtension %+v, want kept until %s (the cap), not the end date", ext, capDay)
	}
	eventually(t, 20*time.Second, requestEvent(t, beyond, "Warning", v1alpha1.ReasonExtensionBeyondCap, "maxRetentionExtension P1Y"))

	ended := extension("bewaren-voorbij", day(now.AddDate(0, -1, 0)), now.AddDate(0, -3, 0))
	eventually(t, 20*time.Second, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ended), ended); err != nil {
			return err
		}
		if ended.Status.State != v1alpha1.StateEnded {
			return fmt.Errorf("state %q, want Ended", ended.Status.State)
		}
		return nil
	})
}

// TestDatedErasureStatus: a granted Erasure with spec.erasure.notBefore
// shows from when the sweeper carries it out.
func TestDatedErasureStatus(t *testing.T) {
	ns := newNamespace(t)
	class := encryptedClass(t)
	newStore(t, ns, class.Name)
	now := time.Now().Truncate(time.Second)
	notBefore := dsr.DateOf(now.AddDate(0, 2, 0))
	r := newRequest(t, ns, "later-vernietigen", now.Add(-time.Hour), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Type = v1alpha1.RequestErasure
		r.Spec.Erasure = &v1alpha1.ErasureSpec{NotBefore: notBefore.String()}
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(now.Add(-time.Minute))}
	})
	eventually(t, 20*time.Second, requestCondition(r, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRequestTracked))
	if r.Status.ErasureNotBefore == nil || !r.Status.ErasureNotBefore.Time.Equal(notBefore.Start()) {
		t.Errorf("status.erasureNotBefore %v, want %s", r.Status.ErasureNotBefore, notBefore.Start())
	}
	for _, c := range r.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady && !strings.Contains(c.Message, "the sweeper erases the dossier from "+notBefore.String()) {
			t.Errorf("Ready message %q does not say when the erasure is carried out", c.Message)
		}
	}
}
