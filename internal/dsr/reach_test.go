package dsr

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestReaches: which routes a restriction and an objection reach, for whom.
func TestReaches(t *testing.T) {
	survey := Route{Name: "survey-addresses", Activities: []string{"onderzoek"}, Categories: []v1alpha1.DataCategory{"identity", "contact"}}
	finance := Route{Name: "finance", Activities: []string{"ondersteuning"}, Categories: []v1alpha1.DataCategory{"finance"}}
	objection := func(routes []string, activities ...v1alpha1.ActivityName) *v1alpha1.DataSubjectRequest {
		return &v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{Type: v1alpha1.RequestObjection,
			Objection: &v1alpha1.ObjectionSpec{Purpose: "p", Routes: routes, Activities: activities}}}
	}
	restriction := func(rs *v1alpha1.RestrictionSpec) *v1alpha1.DataSubjectRequest {
		return &v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{Type: v1alpha1.RequestRestriction, Restriction: rs}}
	}
	cases := []struct {
		name         string
		req          *v1alpha1.DataSubjectRequest
		route        Route
		roles        []string
		want         bool
		wantActivity string
	}{
		{"objection by route", objection([]string{"survey-addresses"}), survey, nil, true, ""},
		{"objection by activity", objection(nil, "onderzoek"), survey, nil, true, "onderzoek"},
		{"objection by another activity", objection(nil, "onderzoek"), finance, nil, false, ""},
		{"objection by another route", objection([]string{"finance"}), survey, nil, false, ""},
		{"whole-dossier restriction", restriction(nil), survey, []string{"coach"}, true, ""},
		{"restriction of a category the route touches", restriction(&v1alpha1.RestrictionSpec{Categories: []v1alpha1.DataCategory{"contact"}}), survey, nil, true, ""},
		{"restriction of another category", restriction(&v1alpha1.RestrictionSpec{Categories: []v1alpha1.DataCategory{"finance"}}), survey, nil, false, ""},
		{"an exempt role", restriction(&v1alpha1.RestrictionSpec{ExemptRoles: []string{"privacy"}}), survey, []string{"coach", "privacy"}, false, ""},
		{"an access request", &v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{Type: v1alpha1.RequestAccess}}, survey, nil, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, activity := Reaches(tc.req, tc.route, tc.roles); got != tc.want || activity != tc.wantActivity {
				t.Errorf("Reaches = %v %q, want %v %q", got, activity, tc.want, tc.wantActivity)
			}
		})
	}
	if got := RouteActivities(nil, "ondersteuning"); !slices.Equal(got, []string{"ondersteuning"}) {
		t.Errorf("a route without activities serves %v, want the store's", got)
	}
	if got := RouteActivities([]string{"onderzoek"}, "ondersteuning"); !slices.Equal(got, []string{"onderzoek"}) {
		t.Errorf("a route with activities serves %v, want its own", got)
	}
}

// TestUnfilterableRoutes: only routes without {dossier} or records, and
// only while a request reaching them is in force.
func TestUnfilterableRoutes(t *testing.T) {
	store := &v1alpha1.DossierStore{Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{
		{Name: "read", Path: "/api/dossiers/{dossier}", Categories: []v1alpha1.DataCategory{"identity"}, ProcessingActivities: []v1alpha1.ActivityName{"onderzoek"}},
		{Name: "export", Path: "/api/survey/addresses", Categories: []v1alpha1.DataCategory{"identity"}, ProcessingActivities: []v1alpha1.ActivityName{"onderzoek"},
			Records: &v1alpha1.RecordsSpec{DossierField: "/dossier"}},
		{Name: "count", Path: "/api/survey/count", Categories: []v1alpha1.DataCategory{"identity"}, ProcessingActivities: []v1alpha1.ActivityName{"onderzoek"}},
		{Name: "finance-list", Path: "/api/finance", Categories: []v1alpha1.DataCategory{"finance"}},
	}}}}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	granted := func(r v1alpha1.DataSubjectRequest, ended bool) v1alpha1.DataSubjectRequest {
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(now.Add(-time.Hour))}
		if ended {
			r.Spec.EndedAt = &metav1.Time{Time: now.Add(-time.Minute)}
		}
		return r
	}
	objection := v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{Type: v1alpha1.RequestObjection,
		Objection: &v1alpha1.ObjectionSpec{Purpose: "p", Activities: []v1alpha1.ActivityName{"onderzoek"}}}}
	restriction := v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{Type: v1alpha1.RequestRestriction,
		Restriction: &v1alpha1.RestrictionSpec{Categories: []v1alpha1.DataCategory{"finance"}}}}
	active := func(r *v1alpha1.DataSubjectRequest) bool { a, _ := Effective(r, now); return a }
	for _, tc := range []struct {
		name string
		reqs []v1alpha1.DataSubjectRequest
		want []string
	}{
		{"none", nil, nil},
		{"an objection to the survey", []v1alpha1.DataSubjectRequest{granted(objection, false)}, []string{"count"}},
		{"an ended objection", []v1alpha1.DataSubjectRequest{granted(objection, true)}, nil},
		{"an undecided objection", []v1alpha1.DataSubjectRequest{objection}, nil},
		{"and a finance restriction", []v1alpha1.DataSubjectRequest{granted(objection, false), granted(restriction, false)}, []string{"count", "finance-list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnfilterableRoutes(StoreRoutes(store), tc.reqs, active); !slices.Equal(got, tc.want) {
				t.Errorf("UnfilterableRoutes = %v, want %v", got, tc.want)
			}
		})
	}
}
