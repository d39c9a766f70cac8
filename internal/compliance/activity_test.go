package compliance

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestEvaluateActivity(t *testing.T) {
	activity := &v1alpha1.ProcessingActivity{
		ObjectMeta: metav1.ObjectMeta{Name: "survey"},
		Spec: v1alpha1.ProcessingActivitySpec{
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
			Retention:      v1alpha1.ActivityRetention{PolicyRef: v1alpha1.RetentionPolicyReference{Name: "keep"}},
		},
	}
	serving := []v1alpha1.ActivityName{"survey"}
	role := func(cats ...v1alpha1.DataCategory) v1alpha1.AccessRole {
		return v1alpha1.AccessRole{ObjectMeta: metav1.ObjectMeta{Name: "researcher"},
			Spec: v1alpha1.AccessRoleSpec{StoreRef: v1alpha1.StoreReference{Name: "s"}, Categories: cats, ProcessingActivities: serving}}
	}
	policy := func(result v1alpha1.ComplianceResult) *v1alpha1.RetentionPolicy {
		return &v1alpha1.RetentionPolicy{Status: v1alpha1.RetentionPolicyStatus{CommonStatus: v1alpha1.CommonStatus{
			Compliance: []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlRetentionEnforced, Result: result, Reason: "X"}}}}}
	}
	cases := []struct {
		name                           string
		facts                          ActivityFacts
		purpose, retention             v1alpha1.ComplianceResult
		purposeReason, retentionReason string
		message                        string
	}{
		{"nothing refers, policy passes", ActivityFacts{Retention: policy(v1alpha1.ResultPass)},
			v1alpha1.ResultPass, v1alpha1.ResultPass, v1alpha1.ReasonCategoriesCovered, v1alpha1.ReasonRetentionPasses, ""},
		{"role within the declared categories", ActivityFacts{Roles: []v1alpha1.AccessRole{role(v1alpha1.CategoryIdentity)}, Retention: policy(v1alpha1.ResultPass)},
			v1alpha1.ResultPass, v1alpha1.ResultPass, v1alpha1.ReasonCategoriesCovered, v1alpha1.ReasonRetentionPasses, ""},
		{"role beyond the declared categories", ActivityFacts{Roles: []v1alpha1.AccessRole{role(v1alpha1.CategoryIdentity, v1alpha1.CategoryHealth)}, Retention: policy(v1alpha1.ResultPass)},
			v1alpha1.ResultFail, v1alpha1.ResultPass, v1alpha1.ReasonCategoriesNotDeclared, v1alpha1.ReasonRetentionPasses, "AccessRole/researcher uses health"},
		{"role of another activity is no reference", ActivityFacts{Roles: []v1alpha1.AccessRole{{ObjectMeta: metav1.ObjectMeta{Name: "x"},
			Spec: v1alpha1.AccessRoleSpec{Categories: []v1alpha1.DataCategory{v1alpha1.CategoryHealth}, ProcessingActivities: []v1alpha1.ActivityName{"care"}}}}, Retention: policy(v1alpha1.ResultPass)},
			v1alpha1.ResultPass, v1alpha1.ResultPass, v1alpha1.ReasonCategoriesCovered, v1alpha1.ReasonRetentionPasses, ""},
		{"referrers not listed", ActivityFacts{ListFailed: true, Retention: policy(v1alpha1.ResultPass)},
			v1alpha1.ResultUnknown, v1alpha1.ResultPass, v1alpha1.ReasonReferencesNotListed, v1alpha1.ReasonRetentionPasses, ""},
		{"retention policy missing", ActivityFacts{},
			v1alpha1.ResultPass, v1alpha1.ResultFail, v1alpha1.ReasonCategoriesCovered, v1alpha1.ReasonRetentionPolicyNotFound, "spec.retention.policyRef names RetentionPolicy keep"},
		{"retention policy failing", ActivityFacts{Retention: policy(v1alpha1.ResultFail)},
			v1alpha1.ResultPass, v1alpha1.ResultFail, v1alpha1.ReasonCategoriesCovered, v1alpha1.ReasonRetentionPolicyFailing, ""},
		{"retention policy without a result", ActivityFacts{Retention: &v1alpha1.RetentionPolicy{}},
			v1alpha1.ResultPass, v1alpha1.ResultUnknown, v1alpha1.ReasonCategoriesCovered, v1alpha1.ReasonRetentionPolicyFailing, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := EvaluateActivity(activity, tc.facts)
			p, r := v.Controls[0], v.Controls[1]
			if p.Control != v1alpha1.ControlPurposeLimitation || p.Result != tc.purpose || p.Reason != tc.purposeReason || p.Reference == "" {
				t.Errorf("PurposeLimitation %+v; want %s/%s", p, tc.purpose, tc.purposeReason)
			}
			if r.Control != v1alpha1.ControlActivityRetention || r.Result != tc.retention || r.Reason != tc.retentionReason || r.Reference == "" {
				t.Errorf("ActivityRetention %+v; want %s/%s", r, tc.retention, tc.retentionReason)
			}
			if tc.message != "" && !strings.Contains(p.Message+r.Message, tc.message) {
				t.Errorf("messages %q / %q; want %q", p.Message, r.Message, tc.message)
			}
		})
	}
}

func TestActivitiesAssigned(t *testing.T) {
	known := map[string]bool{"survey": true}
	for _, tc := range []struct {
		names  []v1alpha1.ActivityName
		ok     bool
		reason string
	}{
		{nil, false, v1alpha1.ReasonNoActivity},
		{[]v1alpha1.ActivityName{"survey"}, true, v1alpha1.ReasonActivitiesFound},
		{[]v1alpha1.ActivityName{"survey", "care"}, false, v1alpha1.ReasonActivityNotFound},
	} {
		ok, reason, msg := ActivitiesAssigned(tc.names, known)
		if ok != tc.ok || reason != tc.reason || msg == "" {
			t.Errorf("%v: %v %s %q; want %v %s", tc.names, ok, reason, msg, tc.ok, tc.reason)
		}
	}
}

func TestRouteActivitiesAssigned(t *testing.T) {
	known := map[string]bool{"survey": true, "care": true}
	route := func(name string, activities ...v1alpha1.ActivityName) v1alpha1.AuditRoute {
		return v1alpha1.AuditRoute{Name: name, ProcessingActivities: activities}
	}
	many := make([]v1alpha1.AuditRoute, 12)
	for i := range many {
		many[i] = route(fmt.Sprintf("r%02d", i))
	}
	for _, tc := range []struct {
		name    string
		routes  []v1alpha1.AuditRoute
		ok      bool
		reason  string
		message []string
	}{
		{"no routes", nil, true, v1alpha1.ReasonActivitiesFound, []string{"no audit routes"}},
		{"every route serves existing activities", []v1alpha1.AuditRoute{route("list", "care"), route("export", "survey", "care")},
			true, v1alpha1.ReasonActivitiesFound, []string{"2 audit routes"}},
		{"a route without activities", []v1alpha1.AuditRoute{route("list", "care"), route("legacy")},
			false, v1alpha1.ReasonNoActivity, []string{"1 of 2 audit routes", "(legacy)", "spec.audit.routes[].processingActivities", "docs/processing-register.md"}},
		{"a route naming a missing activity", []v1alpha1.AuditRoute{route("list", "care", "gone"), route("legacy")},
			false, v1alpha1.ReasonActivityNotFound, []string{"gone (route list)", "does not exist"}},
		{"many routes without activities", many, false, v1alpha1.ReasonNoActivity, []string{"12 of 12", "r09 and 2 more"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason, msg := RouteActivitiesAssigned(tc.routes, known)
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("%v %s %q; want %v %s", ok, reason, msg, tc.ok, tc.reason)
			}
			for _, want := range tc.message {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "r10") {
				t.Errorf("message %q names more than %d routes", msg, maxNamedRoutes)
			}
		})
	}
}
