package dsr

import (
	"slices"
	"strings"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Route is what decides whether a restriction or an objection reaches one
// of a store's audited routes: its name, the processing activities it
// serves (see RouteActivities) and the categories it touches.
type Route struct {
	Name       string
	Activities []string
	Categories []v1alpha1.DataCategory
}

// RouteActivities are the activities a route serves: its own, or, for a
// route that names none, the store's spec.audit.processingActivity (what
// its events record), or none.
func RouteActivities(own []string, storeActivity string) []string {
	if len(own) > 0 || storeActivity == "" {
		return own
	}
	return []string{storeActivity}
}

// ObjectionReaches reports whether an objection refuses route: it names
// the route, or an activity the route serves. activity is the first such
// activity (in the route's order), "" when the objection names the route.
func ObjectionReaches(o *v1alpha1.ObjectionSpec, r Route) (reached bool, activity string) {
	if o == nil {
		return false, ""
	}
	if slices.Contains(o.Routes, r.Name) {
		return true, ""
	}
	for _, a := range r.Activities {
		if slices.Contains(o.Activities, v1alpha1.ActivityName(a)) {
			return true, a
		}
	}
	return false, ""
}

// RestrictionReaches reports whether a restriction refuses route for a
// caller under roles: unless one of roles is exempt, when it covers the
// whole dossier or one of the route's categories. A nil restriction covers
// the whole dossier for everyone.
func RestrictionReaches(rs *v1alpha1.RestrictionSpec, r Route, roles []string) bool {
	if rs == nil {
		return true
	}
	for _, role := range roles {
		if slices.Contains(rs.ExemptRoles, role) {
			return false
		}
	}
	if len(rs.Categories) == 0 {
		return true
	}
	for _, c := range r.Categories {
		if slices.Contains(rs.Categories, c) {
			return true
		}
	}
	return false
}

// Reaches reports whether a granted request of an enforced type reaches
// route for a caller under roles (nil: a caller without an exempt role),
// and the activity an objection reached it through.
func Reaches(req *v1alpha1.DataSubjectRequest, r Route, roles []string) (bool, string) {
	switch req.Spec.Type {
	case v1alpha1.RequestRestriction:
		return RestrictionReaches(req.Spec.Restriction, r, roles), ""
	case v1alpha1.RequestObjection:
		return ObjectionReaches(req.Spec.Objection, r)
	}
	return false, ""
}

// StoreRoutes are a store's audited routes as Reaches reads them, with
// whether each names a dossier and whether it declares records.
func StoreRoutes(store *v1alpha1.DossierStore) []StoreRoute {
	a := store.Spec.Audit
	if a == nil {
		return nil
	}
	out := make([]StoreRoute, 0, len(a.Routes))
	for _, r := range a.Routes {
		own := make([]string, len(r.ProcessingActivities))
		for i, n := range r.ProcessingActivities {
			own[i] = string(n)
		}
		out = append(out, StoreRoute{
			Route:      Route{Name: r.Name, Activities: RouteActivities(own, a.ProcessingActivity), Categories: r.Categories},
			HasDossier: strings.Contains(r.Path, "{dossier}"),
			HasRecords: r.Records != nil,
		})
	}
	return out
}

// StoreRoute is one of a store's routes, for the status of requests.
type StoreRoute struct {
	Route
	// HasDossier: the path names one dossier ({dossier}).
	HasDossier bool
	// HasRecords: a route without {dossier} whose response names the
	// dossier of each item (spec.audit.routes[].records).
	HasRecords bool
}

// Unfilterable reports whether the proxy must refuse the route whole when
// a request reaches it: it names no dossier and declares no records.
func (r StoreRoute) Unfilterable() bool { return !r.HasDossier && !r.HasRecords }

// ObjectionReach is what an objection reaches among a store's routes, each
// list sorted.
type ObjectionReach struct {
	// Routes reached.
	Routes []string
	// Filtered: reached routes without {dossier} that declare records.
	Filtered []string
	// Unfilterable: reached routes without {dossier} or records.
	Unfilterable []string
	// MissingRoutes: named routes the store does not have.
	MissingRoutes []string
}

// ReachOfObjection is what o reaches among routes.
func ReachOfObjection(o *v1alpha1.ObjectionSpec, routes []StoreRoute) ObjectionReach {
	var out ObjectionReach
	if o == nil {
		return out
	}
	for _, r := range routes {
		if ok, _ := ObjectionReaches(o, r.Route); !ok {
			continue
		}
		out.Routes = append(out.Routes, r.Name)
		switch {
		case r.Unfilterable():
			out.Unfilterable = append(out.Unfilterable, r.Name)
		case !r.HasDossier:
			out.Filtered = append(out.Filtered, r.Name)
		}
	}
	for _, name := range o.Routes {
		if !slices.ContainsFunc(routes, func(r StoreRoute) bool { return r.Name == name }) {
			out.MissingRoutes = append(out.MissingRoutes, name)
		}
	}
	slices.Sort(out.Routes)
	slices.Sort(out.Filtered)
	slices.Sort(out.Unfilterable)
	slices.Sort(out.MissingRoutes)
	return out
}

// UnfilterableRoutes are the store's routes without {dossier} or records
// that a request among reqs for which activeAt is true reaches, sorted:
// the routes the proxy refuses whole.
func UnfilterableRoutes(routes []StoreRoute, reqs []v1alpha1.DataSubjectRequest, activeAt func(*v1alpha1.DataSubjectRequest) bool) []string {
	var out []string
	for _, r := range routes {
		if !r.Unfilterable() {
			continue
		}
		for i := range reqs {
			if !activeAt(&reqs[i]) {
				continue
			}
			if ok, _ := Reaches(&reqs[i], r.Route, nil); ok {
				out = append(out, r.Name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
