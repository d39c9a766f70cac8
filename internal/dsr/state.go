package dsr

import (
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// ResponsePeriod is the response period of a store: its
// spec.dataSubjectRights.responsePeriod, P4W by default.
func ResponsePeriod(store *v1alpha1.DossierStore) v1alpha1.Period {
	if store != nil && store.Spec.DataSubjectRights != nil && store.Spec.DataSubjectRights.ResponsePeriod != "" {
		return store.Spec.DataSubjectRights.ResponsePeriod
	}
	return v1alpha1.DefaultResponsePeriod
}

// RequestDeadline is the deadline of req under the response period.
func RequestDeadline(req *v1alpha1.DataSubjectRequest, period v1alpha1.Period) (Deadline, error) {
	ext := 0
	if req.Spec.Extension != nil {
		ext = int(req.Spec.Extension.Months)
	}
	return ComputeDeadline(req.Spec.ReceivedAt.Time, period, ext)
}

// Enforced reports whether the request's type has an effect the audit
// proxy enforces: Restriction and Objection.
func Enforced(t v1alpha1.RequestType) bool {
	return t == v1alpha1.RequestRestriction || t == v1alpha1.RequestObjection
}

// Assessment is where a request stands at one moment.
type Assessment struct {
	// State of the request.
	State v1alpha1.RequestState
	// Deadline of the request.
	Deadline Deadline
	// Late is true when the request was decided after its deadline, or is
	// still undecided past it.
	Late bool
	// Next is the next moment the assessment changes by time alone (the
	// deadline passing, an effect starting or ending); zero when none.
	Next time.Time
}

// Assess says where req stands at now, with its deadline and the store's
// cap on retention extensions (maxExtension).
func Assess(req *v1alpha1.DataSubjectRequest, dl Deadline, now time.Time, maxExtension v1alpha1.Period) Assessment {
	a := Assessment{Deadline: dl}
	s := &req.Spec
	if s.Decision == nil {
		if now.Before(dl.At) {
			a.State, a.Next = v1alpha1.StateOpen, dl.At
		} else {
			a.State, a.Late = v1alpha1.StateOverdue, true
		}
		return a
	}
	a.Late = !s.Decision.DecidedAt.Time.Before(dl.At)
	active, next := effectAt(req, now)
	ended := false
	switch s.Type {
	case v1alpha1.RequestRetentionExtension:
		active, next, ended = extensionAt(req, maxExtension, now)
	case v1alpha1.RequestErasure:
		if from, err := ErasureNotBefore(req); err == nil && s.Decision.Outcome == v1alpha1.DecisionGranted && now.Before(from) {
			next = from
		}
	}
	a.Next = next
	switch {
	case ended || (s.EndedAt != nil && !now.Before(s.EndedAt.Time)):
		a.State = v1alpha1.StateEnded
	case active:
		a.State = v1alpha1.StateInEffect
	default:
		a.State = v1alpha1.StateDecided
	}
	return a
}

// Effective reports whether the audit proxy enforces req at now: a granted
// (or partly granted) Restriction or Objection, from its decision until it
// ends. next is the next moment that changes, zero when none.
func Effective(req *v1alpha1.DataSubjectRequest, now time.Time) (active bool, next time.Time) {
	return effectAt(req, now)
}

// EffectWindow is when the audit proxy enforces req: from its decision
// until spec.endedAt (until is zero when it has no end). ok is false when
// req has no such effect: another type, no decision yet, a refusal, or a
// request being deleted.
func EffectWindow(req *v1alpha1.DataSubjectRequest) (from, until time.Time, ok bool) {
	s := &req.Spec
	if !Enforced(s.Type) || s.Decision == nil || s.Decision.Outcome == v1alpha1.DecisionRefused || !req.DeletionTimestamp.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	from = s.Decision.DecidedAt.Time
	if s.EndedAt != nil {
		until = s.EndedAt.Time
	}
	return from, until, true
}

// InWindow reports whether now is within [from, until); a zero until has
// no end.
func InWindow(from, until, now time.Time) bool {
	return !now.Before(from) && (until.IsZero() || now.Before(until))
}

func effectAt(req *v1alpha1.DataSubjectRequest, now time.Time) (bool, time.Time) {
	from, until, ok := EffectWindow(req)
	switch {
	case !ok:
		return false, time.Time{}
	case now.Before(from):
		return false, from
	case until.IsZero():
		return true, time.Time{}
	case now.Before(until):
		return true, until
	default:
		return false, time.Time{}
	}
}

// extensionAt is whether the retention extension req decides is in effect
// at now, the next moment that changes, and whether it has ended. An
// extension that cannot be computed (only an API server without the
// schema lets one through) is in effect nowhere.
func extensionAt(req *v1alpha1.DataSubjectRequest, maxExtension v1alpha1.Period, now time.Time) (active bool, next time.Time, ended bool) {
	e, err := RetentionExtension(req, maxExtension)
	switch {
	case err != nil || !e.Granted:
		return false, time.Time{}, false
	case now.Before(e.From):
		return false, e.From, false
	case now.Before(e.Ends):
		return true, e.Ends, false
	default:
		return false, time.Time{}, true
	}
}
