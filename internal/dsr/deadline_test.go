package dsr

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestComputeDeadline: the day of receipt in Amsterdam, the period on the
// calendar, the deadline at the next Amsterdam midnight.
func TestComputeDeadline(t *testing.T) {
	cases := []struct {
		name     string
		received string
		period   v1alpha1.Period
		ext      int
		wantDate string
		wantAt   string // RFC 3339 in UTC
	}{
		{"four weeks by default", "2026-12-01T10:00:00Z", "", 0, "2026-12-29", "2026-12-29T23:00:00Z"},
		{"four weeks", "2026-12-01T10:00:00Z", "P4W", 0, "2026-12-29", "2026-12-29T23:00:00Z"},
		{"late evening UTC is the next day in Amsterdam", "2026-01-14T23:30:00Z", "P4W", 0, "2026-02-12", "2026-02-12T23:00:00Z"},
		{"one month on the same day", "2026-01-15T09:00:00Z", "P1M", 0, "2026-02-15", "2026-02-15T23:00:00Z"},
		{"31 January plus a month: the last of February", "2026-01-31T09:00:00Z", "P1M", 0, "2026-02-28", "2026-02-28T23:00:00Z"},
		{"31 January plus a month in a leap year", "2028-01-31T09:00:00Z", "P1M", 0, "2028-02-29", "2028-02-29T23:00:00Z"},
		{"29 February plus a month", "2028-02-29T09:00:00Z", "P1M", 0, "2028-03-29", "2028-03-29T22:00:00Z"},
		{"four weeks across 29 February", "2028-02-10T09:00:00Z", "P4W", 0, "2028-03-09", "2028-03-09T23:00:00Z"},
		{"28 days across February of a common year", "2027-02-01T09:00:00Z", "P28D", 0, "2027-03-01", "2027-03-01T23:00:00Z"},
		{"deadline in summer time: midnight is 22:00 UTC", "2026-03-10T09:00:00Z", "P4W", 0, "2026-04-07", "2026-04-07T22:00:00Z"},
		{"the night summer time starts", "2026-02-28T12:00:00Z", "P4W", 0, "2026-03-28", "2026-03-28T23:00:00Z"},
		{"the day summer time starts is the due day", "2026-03-01T12:00:00Z", "P4W", 0, "2026-03-29", "2026-03-29T22:00:00Z"},
		{"the day winter time starts is the due day", "2026-09-27T12:00:00Z", "P4W", 0, "2026-10-25", "2026-10-25T23:00:00Z"},
		{"received on a summer-time night before midnight UTC", "2026-06-30T22:30:00Z", "P1M", 0, "2026-08-01", "2026-08-01T22:00:00Z"},
		{"one month extended by two", "2026-01-31T09:00:00Z", "P1M", 2, "2026-04-30", "2026-04-30T22:00:00Z"},
		{"four weeks extended by one month", "2026-01-05T09:00:00Z", "P4W", 1, "2026-03-02", "2026-03-02T23:00:00Z"},
		{"over the turn of the year", "2026-12-20T09:00:00Z", "P2W", 0, "2027-01-03", "2027-01-03T23:00:00Z"},
		{"thirty-first of October plus a month", "2026-10-31T09:00:00Z", "P1M", 0, "2026-11-30", "2026-11-30T23:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dl, err := ComputeDeadline(mustParse(t, tc.received), tc.period, tc.ext)
			if err != nil {
				t.Fatal(err)
			}
			if got := dl.Date.String(); got != tc.wantDate {
				t.Errorf("due date %s, want %s", got, tc.wantDate)
			}
			if got := dl.At.UTC().Format(time.RFC3339); got != tc.wantAt {
				t.Errorf("deadline passes at %s, want %s", got, tc.wantAt)
			}
			if h, m, _ := dl.At.In(Amsterdam).Clock(); h != 0 || m != 0 {
				t.Errorf("deadline at %s is not midnight in Amsterdam", dl.At.In(Amsterdam))
			}
		})
	}
}

// TestComputeDeadlineRefuses periods beyond AVG art. 12(3).
func TestComputeDeadlineRefuses(t *testing.T) {
	at := mustParse(t, "2026-12-01T10:00:00Z")
	for _, tc := range []struct {
		period v1alpha1.Period
		ext    int
	}{{"P2M", 0}, {"P5W", 0}, {"P30D", 0}, {"P1Y", 0}, {"4 weeks", 0}, {"P4W", 3}, {"P4W", -1}} {
		if dl, err := ComputeDeadline(at, tc.period, tc.ext); err == nil {
			t.Errorf("period %s extended by %d: deadline %v, want an error", tc.period, tc.ext, dl.Date)
		}
	}
}

func request(typ v1alpha1.RequestType, decided, ended string, outcome v1alpha1.DecisionOutcome) *v1alpha1.DataSubjectRequest {
	r := &v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{
		Type: typ, ReceivedAt: metav1.NewTime(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
	}}
	if decided != "" {
		d, _ := time.Parse(time.RFC3339, decided)
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: outcome, DecidedAt: metav1.NewTime(d)}
	}
	if ended != "" {
		e, _ := time.Parse(time.RFC3339, ended)
		r.Spec.EndedAt = &metav1.Time{Time: e}
	}
	return r
}

// TestAssess: states, lateness and the next moment to look again.
func TestAssess(t *testing.T) {
	dueAt := mustParse(t, "2026-11-30T23:00:00Z") // received 2 November, P4W: due 30 November
	cases := []struct {
		name     string
		req      *v1alpha1.DataSubjectRequest
		now      string
		want     v1alpha1.RequestState
		wantLate bool
		wantNext string
	}{
		{"open before the deadline", request(v1alpha1.RequestAccess, "", "", ""), "2026-11-20T10:00:00Z", v1alpha1.StateOpen, false, "2026-11-30T23:00:00Z"},
		{"open on the due day, just before Amsterdam midnight", request(v1alpha1.RequestAccess, "", "", ""), "2026-11-30T22:59:59Z", v1alpha1.StateOpen, false, "2026-11-30T23:00:00Z"},
		{"overdue at Amsterdam midnight", request(v1alpha1.RequestAccess, "", "", ""), "2026-11-30T23:00:00Z", v1alpha1.StateOverdue, true, ""},
		{"decided in time", request(v1alpha1.RequestAccess, "2026-11-20T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-12-05T10:00:00Z", v1alpha1.StateDecided, false, ""},
		{"decided late", request(v1alpha1.RequestAccess, "2026-12-02T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-12-05T10:00:00Z", v1alpha1.StateDecided, true, ""},
		{"restriction granted, in effect", request(v1alpha1.RequestRestriction, "2026-11-03T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-11-04T10:00:00Z", v1alpha1.StateInEffect, false, ""},
		{"restriction refused: no effect", request(v1alpha1.RequestRestriction, "2026-11-03T10:00:00Z", "", v1alpha1.DecisionRefused), "2026-11-04T10:00:00Z", v1alpha1.StateDecided, false, ""},
		{"restriction partly granted, until it ends", request(v1alpha1.RequestRestriction, "2026-11-03T10:00:00Z", "2026-11-10T10:00:00Z", v1alpha1.DecisionPartiallyGranted), "2026-11-04T10:00:00Z", v1alpha1.StateInEffect, false, "2026-11-10T10:00:00Z"},
		{"restriction ended", request(v1alpha1.RequestRestriction, "2026-11-03T10:00:00Z", "2026-11-10T10:00:00Z", v1alpha1.DecisionGranted), "2026-11-10T10:00:00Z", v1alpha1.StateEnded, false, ""},
		{"objection decided for later", request(v1alpha1.RequestObjection, "2026-11-05T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-11-04T10:00:00Z", v1alpha1.StateDecided, false, "2026-11-05T10:00:00Z"},
		{"access has no effect", request(v1alpha1.RequestAccess, "2026-11-05T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-11-06T10:00:00Z", v1alpha1.StateDecided, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dl, err := RequestDeadline(tc.req, "P4W")
			if err != nil {
				t.Fatal(err)
			}
			if !dl.At.Equal(dueAt) {
				t.Fatalf("deadline %s, want %s", dl.At, dueAt)
			}
			a := Assess(tc.req, dl, mustParse(t, tc.now), v1alpha1.DefaultMaxRetentionExtension)
			if a.State != tc.want || a.Late != tc.wantLate {
				t.Errorf("state %s late %v, want %s late %v", a.State, a.Late, tc.want, tc.wantLate)
			}
			var next string
			if !a.Next.IsZero() {
				next = a.Next.UTC().Format(time.RFC3339)
			}
			if next != tc.wantNext {
				t.Errorf("next %q, want %q", next, tc.wantNext)
			}
		})
	}
}
