package auditproxy

import (
	"errors"
	"slices"
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
	objection   bool
	// restriction: the categories (none: the whole dossier) and the roles
	// that are exempt.
	categories []v1alpha1.DataCategory
	exempt     []string
	// objection: the routes refused.
	routes []string
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
		eff := requestEffect{from: from, until: until}
		switch r.Spec.Type {
		case v1alpha1.RequestRestriction:
			if rs := r.Spec.Restriction; rs != nil {
				eff.categories, eff.exempt = slices.Clone(rs.Categories), slices.Clone(rs.ExemptRoles)
			}
		case v1alpha1.RequestObjection:
			if r.Spec.Objection == nil {
				continue // the API requires it; nothing to refuse without it
			}
			eff.objection, eff.routes = true, slices.Clone(r.Spec.Objection.Routes)
		}
		p := string(r.Spec.Dossier)
		e.byDossier[p] = append(e.byDossier[p], eff)
	}
	return e
}

// Len is the number of dossiers with an effect.
func (e *RequestEffects) Len() int { return len(e.byDossier) }

// Check says whether a request for the dossier with this pseudonym, on
// route, decided under roles, is refused at now. A restriction applies
// when it covers the whole dossier or one of the route's categories, unless
// one of roles is exempt; an objection when it names the route. A
// restriction wins over an objection.
func (e *RequestEffects) Check(pseudonym string, route *accesspolicy.Route, roles []string, now time.Time) Refusal {
	effects := e.byDossier[pseudonym]
	if len(effects) == 0 {
		return NotRefused
	}
	out := NotRefused
	for i := range effects {
		eff := &effects[i]
		if !dsr.InWindow(eff.from, eff.until, now) {
			continue
		}
		switch {
		case eff.objection:
			if slices.Contains(eff.routes, route.Name) {
				out = RefusedObjected
			}
		case restricts(eff, route, roles):
			return RefusedRestricted
		}
	}
	return out
}

func restricts(eff *requestEffect, route *accesspolicy.Route, roles []string) bool {
	for _, r := range roles {
		if slices.Contains(eff.exempt, r) {
			return false
		}
	}
	if len(eff.categories) == 0 {
		return true
	}
	for _, c := range route.Categories {
		if slices.Contains(eff.categories, c) {
			return true
		}
	}
	return false
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
