package compliance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

func requestOutcome(name string, state v1alpha1.RequestState, due string, late bool, next time.Time) RequestOutcome {
	d, _ := time.Parse(time.DateOnly, due)
	date := dsr.DateOf(d.Add(12 * time.Hour))
	return RequestOutcome{Name: name, Assessment: dsr.Assessment{State: state, Late: late, Next: next,
		Deadline: dsr.Deadline{Date: date, At: d.Add(23 * time.Hour)}}}
}

// TestDataSubjectRightsControl: fails while a request is overdue, passes
// otherwise; the evidence names overdue requests first, then open ones by
// due date, never a dossier.
func TestDataSubjectRightsControl(t *testing.T) {
	cases := []struct {
		name         string
		requests     []RequestOutcome
		wantResult   v1alpha1.ComplianceResult
		wantReason   string
		wantMessage  string
		wantEvidence []string
	}{
		{"no requests", nil, v1alpha1.ResultPass, v1alpha1.ReasonNoOpenRequests, "no undecided data-subject request (0 recorded)", nil},
		{"only decided ones, one of them late", []RequestOutcome{
			requestOutcome("a", v1alpha1.StateDecided, "2026-11-01", true, time.Time{}),
			requestOutcome("b", v1alpha1.StateInEffect, "2026-11-05", false, time.Time{}),
		}, v1alpha1.ResultPass, v1alpha1.ReasonNoOpenRequests, "(2 recorded)", nil},
		{"open within the deadline", []RequestOutcome{
			requestOutcome("later", v1alpha1.StateOpen, "2026-12-20", false, time.Time{}),
			requestOutcome("sooner", v1alpha1.StateOpen, "2026-12-10", false, time.Time{}),
		}, v1alpha1.ResultPass, v1alpha1.ReasonRequestsWithinDeadline, "2 open request(s), all within the deadline; the next due 2026-12-10 (Europe/Amsterdam)",
			[]string{"DataSubjectRequest/sooner: Open, due 2026-12-10", "DataSubjectRequest/later: Open, due 2026-12-20"}},
		{"one overdue among open ones", []RequestOutcome{
			requestOutcome("open", v1alpha1.StateOpen, "2026-12-10", false, time.Time{}),
			requestOutcome("late", v1alpha1.StateOverdue, "2026-11-28", true, time.Time{}),
			requestOutcome("done", v1alpha1.StateDecided, "2026-11-01", false, time.Time{}),
		}, v1alpha1.ResultFail, v1alpha1.ReasonRequestsOverdue, "1 request(s) past the deadline and not decided, the oldest due 2026-11-28 (Europe/Amsterdam)",
			[]string{"DataSubjectRequest/late: Overdue, due 2026-11-28", "DataSubjectRequest/open: Open, due 2026-12-10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DataSubjectRightsControl(tc.requests)
			if c.Control != v1alpha1.ControlDataSubjectRights || c.Reference != "AVG art. 12(3), art. 15-21" {
				t.Errorf("control %s, reference %q", c.Control, c.Reference)
			}
			if c.Result != tc.wantResult || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("got %s %s %q, want %s %s containing %q", c.Result, c.Reason, c.Message, tc.wantResult, tc.wantReason, tc.wantMessage)
			}
			if !slices.Equal(c.Evidence, tc.wantEvidence) {
				t.Errorf("evidence %q, want %q", c.Evidence, tc.wantEvidence)
			}
		})
	}
}

// TestDataSubjectRightsEvidenceBounded: a store with many open requests
// keeps its status small.
func TestDataSubjectRightsEvidenceBounded(t *testing.T) {
	var many []RequestOutcome
	for i := 0; i < 3*maxRequestEvidence; i++ {
		many = append(many, requestOutcome("r", v1alpha1.StateOpen, "2026-12-10", false, time.Time{}))
	}
	if got := len(DataSubjectRightsControl(many).Evidence); got != maxRequestEvidence {
		t.Errorf("%d evidence lines, want %d", got, maxRequestEvidence)
	}
}

func TestNextRequestChange(t *testing.T) {
	a, b := time.Date(2026, 12, 10, 23, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	got := NextRequestChange([]RequestOutcome{
		requestOutcome("a", v1alpha1.StateOpen, "2026-12-10", false, a),
		requestOutcome("none", v1alpha1.StateDecided, "2026-11-10", false, time.Time{}),
		requestOutcome("b", v1alpha1.StateDecided, "2026-11-10", false, b),
	})
	if !got.Equal(b) {
		t.Errorf("next change %s, want %s", got, b)
	}
	if !NextRequestChange(nil).IsZero() {
		t.Error("next change of no requests is not zero")
	}
}

func TestResponseDeadlineControl(t *testing.T) {
	for _, tc := range []struct {
		state  v1alpha1.RequestState
		late   bool
		result v1alpha1.ComplianceResult
		reason string
	}{
		{v1alpha1.StateOpen, false, v1alpha1.ResultPass, v1alpha1.ReasonWithinDeadline},
		{v1alpha1.StateOverdue, true, v1alpha1.ResultFail, v1alpha1.ReasonDeadlinePassed},
		{v1alpha1.StateDecided, false, v1alpha1.ResultPass, v1alpha1.ReasonDecidedInTime},
		{v1alpha1.StateInEffect, true, v1alpha1.ResultFail, v1alpha1.ReasonDecidedLate},
		{v1alpha1.StateEnded, false, v1alpha1.ResultPass, v1alpha1.ReasonDecidedInTime},
	} {
		c := ResponseDeadlineControl(requestOutcome("x", tc.state, "2026-12-10", tc.late, time.Time{}).Assessment)
		if c.Result != tc.result || c.Reason != tc.reason || !strings.Contains(c.Message, "2026-12-10 (Europe/Amsterdam)") {
			t.Errorf("%s late=%v: %s %s %q, want %s %s", tc.state, tc.late, c.Result, c.Reason, c.Message, tc.result, tc.reason)
		}
	}
}

// TestWithRequestAccess: a passing control is Unknown while the proxy
// cannot watch the requests; a failing one stays failed; with access the
// Role and the NetworkPolicy are evidence.
func TestWithRequestAccess(t *testing.T) {
	pass := DataSubjectRightsControl(nil)
	if c := WithRequestAccess(pass, true, "s-workload", "s-isolation"); c.Result != v1alpha1.ResultPass ||
		!slices.Equal(c.Evidence, []string{"Role/s-workload", "NetworkPolicy/s-isolation"}) {
		t.Errorf("with access: %s %q", c.Result, c.Evidence)
	}
	if c := WithRequestAccess(pass, false, "s-workload", "s-isolation"); c.Result != v1alpha1.ResultUnknown ||
		c.Reason != v1alpha1.ReasonProxyCannotWatchRequests || !strings.Contains(c.Message, "refuses every request for a dossier") {
		t.Errorf("without access: %s %s %q", c.Result, c.Reason, c.Message)
	}
	fail := DataSubjectRightsControl([]RequestOutcome{requestOutcome("late", v1alpha1.StateOverdue, "2026-11-28", true, time.Time{})})
	if c := WithRequestAccess(fail, false, "r", "p"); c.Result != v1alpha1.ResultFail || c.Reason != v1alpha1.ReasonRequestsOverdue {
		t.Errorf("overdue without access: %s %s, want it to stay failed", c.Result, c.Reason)
	}
}
