package auditproxy

import (
	"errors"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

// ErrRequestsNotSynced is returned by a SubjectRequestSource that has not
// yet read the store's data-subject requests; the proxy then refuses every
// request for a dossier (503), since any of them may be restricted.
var ErrRequestsNotSynced = errors.New("the store's data-subject requests are not loaded yet")

// SubjectRequestSource supplies the restrictions and objections in force
// for the store's dossiers. An error means they are not known; the proxy
// fails closed.
type SubjectRequestSource interface {
	Effects() (*RequestEffects, error)
}

// RequestsLoaded is the readiness of src: ErrRequestsNotSynced until it has
// read the store's data-subject requests once, nil after that and when no
// source is configured. A pod whose proxy or gateway would refuse every
// request for a dossier is not ready; a watch that fails after the first
// list does not make it unready (each request then gets the 503 that says
// why, see Effects).
func RequestsLoaded(src SubjectRequestSource) error {
	if src == nil {
		return nil
	}
	if _, err := src.Effects(); errors.Is(err, ErrRequestsNotSynced) {
		return err
	}
	return nil
}

// Refusal is why a data-subject request refuses a request, if it does.
type Refusal int

// The refusals.
const (
	// NotRefused: no restriction or objection applies.
	NotRefused Refusal = iota
	// RefusedRestricted: the dossier (or a category of the route) is
	// restricted (AVG art. 18) and the caller has no exempt role.
	RefusedRestricted
	// RefusedObjected: the data subject objected to the processing this
	// route serves (AVG art. 21).
	RefusedObjected
)

// requestEffect is one granted restriction or objection, by pseudonym.
type requestEffect struct {
	from, until time.Time
	typ         v1alpha1.RequestType
	// restriction: the categories (none: the whole dossier) and the roles
	// that are exempt; nil restricts the whole dossier for everyone.
	restriction *v1alpha1.RestrictionSpec
	// objection: the routes and activities refused.
	objection *v1alpha1.ObjectionSpec
}

// reaches is dsr.Reaches of the effect.
func (eff *requestEffect) reaches(t Target) (bool, string) {
	if eff.typ == v1alpha1.RequestObjection {
		return dsr.ObjectionReaches(eff.objection, t.Route)
	}
	return dsr.RestrictionReaches(eff.restriction, t.Route, t.Roles), ""
}

// RequestEffects is an immutable set of the granted restrictions and
// objections of one store, by dossier pseudonym, with their windows; a
// request is checked against it at its own moment, so that an effect
// starts and ends on time without a rebuild.
type RequestEffects struct {
	byDossier map[string][]requestEffect
}

// NewRequestEffects collects the effects of the requests of store among
// reqs (requests of other stores are ignored).
func NewRequestEffects(store string, reqs []v1alpha1.DataSubjectRequest) *RequestEffects {
	e := &RequestEffects{byDossier: map[string][]requestEffect{}}
	for i := range reqs {
		r := &reqs[i]
		if r.Spec.StoreRef.Name != store {
			continue
		}
		from, until, ok := dsr.EffectWindow(r)
		if !ok {
			continue
		}
		eff := requestEffect{from: from, until: until, typ: r.Spec.Type}
		switch r.Spec.Type {
		case v1alpha1.RequestRestriction:
			eff.restriction = r.Spec.Restriction.DeepCopy()
		case v1alpha1.RequestObjection:
			if r.Spec.Objection == nil {
				continue // the API requires it; nothing to refuse without it
			}
			eff.objection = r.Spec.Objection.DeepCopy()
		}
		p := string(r.Spec.Dossier)
		e.byDossier[p] = append(e.byDossier[p], eff)
	}
	return e
}

// Len is the number of dossiers with an effect.
func (e *RequestEffects) Len() int { return len(e.byDossier) }

// Target is what a request is checked on: its route, with the activities
// the route serves (dsr.RouteActivities), and the roles it was decided
// under.
type Target struct {
	Route dsr.Route
	Roles []string
}

// TargetOf is the target of a request on route under roles, in doc.
func TargetOf(doc *accesspolicy.Document, route *accesspolicy.Route, roles []string) Target {
	return TargetFor(route, doc.ProcessingActivity, roles)
}

// TargetFor is the target of a request on route under roles, in a store
// whose own ProcessingActivity is storeActivity (what a route without
// activities serves).
func TargetFor(route *accesspolicy.Route, storeActivity string, roles []string) Target {
	return Target{
		Route: dsr.Route{Name: route.Name, Activities: dsr.RouteActivities(route.Activities, storeActivity), Categories: route.Categories},
		Roles: roles,
	}
}

// Check says whether a request for the dossier with this pseudonym, on
// target, is refused at now, and for an objection through an activity,
// which. A restriction applies when it covers the whole dossier or one of
// the route's categories, unless one of the roles is exempt; an objection
// when it names the route or an activity the route serves. A restriction
// wins over an objection.
func (e *RequestEffects) Check(pseudonym string, t Target, now time.Time) (Refusal, string) {
	return check(e.byDossier[pseudonym], t, now)
}

func check(effects []requestEffect, t Target, now time.Time) (Refusal, string) {
	out, activity := NotRefused, ""
	for i := range effects {
		eff := &effects[i]
		if !dsr.InWindow(eff.from, eff.until, now) {
			continue
		}
		reached, a := eff.reaches(t)
		switch {
		case !reached:
		case eff.typ == v1alpha1.RequestObjection:
			if out == NotRefused || (activity == "" && a != "") {
				out, activity = RefusedObjected, a
			}
		default:
			return RefusedRestricted, ""
		}
	}
	return out, activity
}

// CheckAny says whether some dossier's request refuses target at now: what
// a route without {dossier} that cannot be filtered is refused for.
func (e *RequestEffects) CheckAny(t Target, now time.Time) (Refusal, string) {
	out, activity := NotRefused, ""
	for _, effects := range e.byDossier {
		switch r, a := check(effects, t, now); r {
		case RefusedRestricted:
			return r, ""
		case RefusedObjected:
			if out == NotRefused || (activity == "" && a != "") {
				out, activity = r, a
			}
		}
	}
	return out, activity
}

// Withheld reports whether the items of the dossier with this pseudonym
// are left out of a response on target at now.
func (e *RequestEffects) Withheld(pseudonym string, t Target, now time.Time) bool {
	r, _ := e.Check(pseudonym, t, now)
	return r != NotRefused
}

// StaticRequests is a SubjectRequestSource with a fixed set (for tests and
// embedding); a nil set stands for one that is not synced.
type StaticRequests struct{ Set *RequestEffects }

// Effects returns the set, or ErrRequestsNotSynced when there is none.
func (s StaticRequests) Effects() (*RequestEffects, error) {
	if s.Set == nil {
		return nil, ErrRequestsNotSynced
	}
	return s.Set, nil
}
