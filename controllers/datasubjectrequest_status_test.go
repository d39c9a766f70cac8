package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

const statusPseudonym = "3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f"

func statusRequest() *v1alpha1.DataSubjectRequest {
	return &v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "inzage-1", Namespace: "cjg", Generation: 2},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: "cjg-dossiers"}, Type: v1alpha1.RequestAccess, Dossier: statusPseudonym,
			ReceivedAt: metav1.NewTime(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
		},
	}
}

// TestSetRequestStatus: due date, state and conditions from the facts;
// never the pseudonym.
func TestSetRequestStatus(t *testing.T) {
	dl, err := dsr.ComputeDeadline(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), "P4W", 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                         string
		facts                        requestFacts
		wantState                    v1alpha1.RequestState
		wantReady, wantDeadline      string
		wantCompliant, wantReadyText string
	}{
		{"open", requestFacts{storeFound: true, period: "P4W", assessment: dsr.Assessment{State: v1alpha1.StateOpen, Deadline: dl}},
			v1alpha1.StateOpen, "True/RequestTracked", "True/WithinDeadline", "True", "Access request, due 2026-11-30 (Europe/Amsterdam, P4W from receipt); Open"},
		{"overdue", requestFacts{storeFound: true, period: "P4W", assessment: dsr.Assessment{State: v1alpha1.StateOverdue, Late: true, Deadline: dl}},
			v1alpha1.StateOverdue, "True/RequestTracked", "False/DeadlinePassed", "False", "due 2026-11-30"},
		{"store missing", requestFacts{period: "P4W", assessment: dsr.Assessment{State: v1alpha1.StateOpen, Deadline: dl}},
			v1alpha1.StateOpen, "False/StoreNotFound", "True/WithinDeadline", "True", `DossierStore "cjg-dossiers" does not exist`},
		{"unusable period", requestFacts{storeFound: true, period: "P3M", periodErr: errors.New("must be at most one month")},
			"", "False/InvalidResponsePeriod", "False/InvalidResponsePeriod", "False", "no deadline can be computed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := statusRequest()
			setRequestStatus(req, tc.facts)
			st := req.Status
			if st.State != tc.wantState || st.ObservedGeneration != 2 {
				t.Errorf("state %q generation %d, want %q and 2", st.State, st.ObservedGeneration, tc.wantState)
			}
			if tc.wantState != "" && (st.DueDate != "2026-11-30" || st.DueAt == nil || !st.DueAt.Time.Equal(dl.At)) {
				t.Errorf("due %q at %v, want 2026-11-30 at %s", st.DueDate, st.DueAt, dl.At)
			}
			cond := func(typ string) string {
				for _, c := range st.Conditions {
					if c.Type == typ {
						return string(c.Status) + "/" + c.Reason
					}
				}
				return "missing"
			}
			if got := cond("Ready"); got != tc.wantReady {
				t.Errorf("Ready %s, want %s", got, tc.wantReady)
			}
			if got := cond("DeadlineMet"); got != tc.wantDeadline {
				t.Errorf("DeadlineMet %s, want %s", got, tc.wantDeadline)
			}
			if got := cond("Compliant"); !strings.HasPrefix(got, tc.wantCompliant+"/") {
				t.Errorf("Compliant %s, want %s", got, tc.wantCompliant)
			}
			for _, c := range st.Conditions {
				if c.Type == "Ready" && !strings.Contains(c.Message, tc.wantReadyText) {
					t.Errorf("Ready message %q, want it to contain %q", c.Message, tc.wantReadyText)
				}
				if strings.Contains(c.Message, statusPseudonym) {
					t.Errorf("condition %s holds the pseudonym", c.Type)
				}
			}
		})
	}
}

// TestRequestTransition: an Event when a request becomes overdue and when
// its effect starts or ends; none otherwise.
func TestRequestTransition(t *testing.T) {
	for _, tc := range []struct {
		before, after v1alpha1.RequestState
		want          string
	}{
		{"", v1alpha1.StateOpen, ""},
		{v1alpha1.StateOpen, v1alpha1.StateOpen, ""},
		{v1alpha1.StateOpen, v1alpha1.StateOverdue, "Warning RequestOverdue: the request is past its deadline of 2026-11-30 (Europe/Amsterdam) and not decided"},
		{"", v1alpha1.StateOverdue, "Warning RequestOverdue: the request is past its deadline of 2026-11-30 (Europe/Amsterdam) and not decided"},
		{v1alpha1.StateOverdue, v1alpha1.StateDecided, ""},
		{v1alpha1.StateOpen, v1alpha1.StateInEffect, "Normal EffectStarted: the decision is in effect: the audit proxy enforces it for the dossier"},
		{v1alpha1.StateInEffect, v1alpha1.StateEnded, "Normal EffectEnded: the request's effect has ended: the audit proxy no longer enforces it"},
		{v1alpha1.StateInEffect, v1alpha1.StateDecided, "Normal EffectEnded: the request's effect has ended: the audit proxy no longer enforces it"},
		{v1alpha1.StateDecided, v1alpha1.StateEnded, ""},
	} {
		got := ""
		if ok, typ, reason, msg := requestTransition(tc.before, tc.after, "2026-11-30"); ok {
			got = typ + " " + reason + ": " + msg
		}
		if got != tc.want {
			t.Errorf("%q -> %q: %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}
