package compliance

import (
	"fmt"
	"sort"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

func init() {
	References[v1alpha1.ControlDataSubjectRights] = "AVG art. 12(3), art. 15-21"
	References[v1alpha1.ControlResponseDeadline] = "AVG art. 12(3)"
}

// RequestOutcome is what a store knows of one of its data-subject requests:
// its name (never the dossier), its due date and its assessment.
type RequestOutcome struct {
	Name       string
	Assessment dsr.Assessment
}

// maxRequestEvidence bounds the evidence of the DataSubjectRights control.
const maxRequestEvidence = 20

// DataSubjectRightsControl fails while a request of the store is past its
// deadline undecided, and passes otherwise. The evidence names the overdue
// requests first, then the open ones by due date.
func DataSubjectRightsControl(requests []RequestOutcome) v1alpha1.ComplianceControl {
	var overdue, open []RequestOutcome
	for _, r := range requests {
		switch r.Assessment.State {
		case v1alpha1.StateOverdue:
			overdue = append(overdue, r)
		case v1alpha1.StateOpen:
			open = append(open, r)
		}
	}
	byDue := func(l []RequestOutcome) {
		sort.Slice(l, func(i, j int) bool {
			a, b := l[i].Assessment.Deadline.At, l[j].Assessment.Deadline.At
			if !a.Equal(b) {
				return a.Before(b)
			}
			return l[i].Name < l[j].Name
		})
	}
	byDue(overdue)
	byDue(open)
	evidence := make([]string, 0, min(len(overdue)+len(open), maxRequestEvidence))
	for _, r := range append(overdue, open...) {
		if len(evidence) == maxRequestEvidence {
			break
		}
		evidence = append(evidence, fmt.Sprintf("DataSubjectRequest/%s: %s, due %s", r.Name, r.Assessment.State, r.Assessment.Deadline.Date))
	}
	switch {
	case len(overdue) > 0:
		return control(v1alpha1.ControlDataSubjectRights, v1alpha1.ResultFail, v1alpha1.ReasonRequestsOverdue,
			fmt.Sprintf("%d request(s) past the deadline and not decided, the oldest due %s (%s)", len(overdue), overdue[0].Assessment.Deadline.Date, dsr.TimeZone),
			evidence...)
	case len(open) > 0:
		return control(v1alpha1.ControlDataSubjectRights, v1alpha1.ResultPass, v1alpha1.ReasonRequestsWithinDeadline,
			fmt.Sprintf("%d open request(s), all within the deadline; the next due %s (%s)", len(open), open[0].Assessment.Deadline.Date, dsr.TimeZone),
			evidence...)
	default:
		return control(v1alpha1.ControlDataSubjectRights, v1alpha1.ResultPass, v1alpha1.ReasonNoOpenRequests,
			fmt.Sprintf("no undecided data-subject request (%d recorded)", len(requests)))
	}
}

// RequestsNotListedControl is the store's DataSubjectRights control when
// its requests could not be read: Unknown, never a pass.
func RequestsNotListedControl() v1alpha1.ComplianceControl {
	return control(v1alpha1.ControlDataSubjectRights, v1alpha1.ResultUnknown, v1alpha1.ReasonRequestsNotListed,
		"the store's data-subject requests could not be read")
}

// NextRequestChange is the earliest moment one of the requests changes by
// time alone (a deadline passing, an effect starting or ending), zero when
// none: the store and the requests are looked at again then, not polled.
func NextRequestChange(requests []RequestOutcome) time.Time {
	var next time.Time
	for _, r := range requests {
		if n := r.Assessment.Next; !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// ResponseDeadlineControl is a request's own control: it passes while the
// request is open within its deadline or was decided in time.
func ResponseDeadlineControl(a dsr.Assessment) v1alpha1.ComplianceControl {
	due := fmt.Sprintf("%s (%s)", a.Deadline.Date, dsr.TimeZone)
	switch {
	case a.State == v1alpha1.StateOverdue:
		return control(v1alpha1.ControlResponseDeadline, v1alpha1.ResultFail, v1alpha1.ReasonDeadlinePassed,
			"not decided, and the deadline of "+due+" has passed")
	case a.State == v1alpha1.StateOpen:
		return control(v1alpha1.ControlResponseDeadline, v1alpha1.ResultPass, v1alpha1.ReasonWithinDeadline,
			"to be decided by the end of "+due)
	case a.Late:
		return control(v1alpha1.ControlResponseDeadline, v1alpha1.ResultFail, v1alpha1.ReasonDecidedLate,
			"decided after the deadline of "+due)
	default:
		return control(v1alpha1.ControlResponseDeadline, v1alpha1.ResultPass, v1alpha1.ReasonDecidedInTime,
			"decided within the deadline of "+due)
	}
}

// WithRequestAccess is the DataSubjectRights control with what the audit
// proxy needs to enforce restrictions and objections: while it cannot watch
// the requests (no Role or no route to the API server), the proxy refuses
// every request for a dossier, and the control is Unknown with
// ReasonProxyCannotWatchRequests, unless it fails anyway.
func WithRequestAccess(c v1alpha1.ComplianceControl, access bool, role, policy string) v1alpha1.ComplianceControl {
	if !access {
		if c.Result == v1alpha1.ResultPass {
			c.Result, c.Reason = v1alpha1.ResultUnknown, v1alpha1.ReasonProxyCannotWatchRequests
			c.Message = "the audit proxy cannot watch the store's requests (Role " + role + ", NetworkPolicy " + policy +
				" to the API server), so it refuses every request for a dossier; " + c.Message
		}
		return c
	}
	c.Evidence = append(c.Evidence, "Role/"+role, "NetworkPolicy/"+policy)
	return c
}
