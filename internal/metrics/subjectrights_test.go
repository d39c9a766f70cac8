package metrics

import (
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

const pseudonym = "3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f"

func dsrWith(state v1alpha1.RequestState) *v1alpha1.DataSubjectRequest {
	return &v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: "inzage-1"},
		Spec:       v1alpha1.DataSubjectRequestSpec{Type: v1alpha1.RequestAccess, Dossier: pseudonym},
		Status: v1alpha1.DataSubjectRequestStatus{State: state, DueAt: at(t0), CommonStatus: v1alpha1.CommonStatus{
			// A late decision stays on record in status, not in the metrics.
			Compliance: []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlResponseDeadline, Result: v1alpha1.ResultFail, Reason: v1alpha1.ReasonDecidedLate}}}},
	}
}

// TestDataSubjectRequestSamples: the deadline while undecided, overdue as
// 0 or 1, nothing before the first status, never the request's own
// control.
func TestDataSubjectRequestSamples(t *testing.T) {
	for _, c := range []struct {
		state v1alpha1.RequestState
		want  []Sample
	}{
		{"", nil},
		{v1alpha1.StateOpen, []Sample{{RequestDue, []string{"Access"}, float64(t0.Unix())}, {RequestOverdue, []string{"Access"}, 0}}},
		{v1alpha1.StateOverdue, []Sample{{RequestDue, []string{"Access"}, float64(t0.Unix())}, {RequestOverdue, []string{"Access"}, 1}}},
		{v1alpha1.StateDecided, []Sample{{RequestOverdue, []string{"Access"}, 0}}},
		{v1alpha1.StateInEffect, []Sample{{RequestOverdue, []string{"Access"}, 0}}},
	} {
		if got := DataSubjectRequest(dsrWith(c.state)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("state %q: samples %v, want %v", c.state, got, c.want)
		}
	}
}

// TestDataSubjectRequestSeriesHoldNoPseudonym: the exposition names the
// request, never its dossier.
func TestDataSubjectRequestSeriesHoldNoPseudonym(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRecorder(reg)
	o := Object{KindDataSubjectRequest, "cjg", "inzage-1"}
	r.Set(o, DataSubjectRequest(dsrWith(v1alpha1.StateOverdue)))
	if n := testutil.CollectAndCount(r, RequestOverdue); n != 1 {
		t.Fatalf("%d overdue series, want 1", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), pseudonym) {
					t.Errorf("%s has the pseudonym in label %s", mf.GetName(), l.GetName())
				}
			}
		}
	}
	if !strings.Contains(strings.Join(names, " "), RequestDue) {
		t.Errorf("gathered %v, want %s among them", names, RequestDue)
	}
	r.Forget(o)
	if n := testutil.CollectAndCount(r, RequestDue); n != 0 {
		t.Errorf("%d due series after Forget, want 0", n)
	}
}
