package compliance

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlPurposeLimitation] = "AVG art. 5(1)(b), art. 5(1)(c), art. 30(1)(c)"
	References[v1alpha1.ControlActivityRetention] = "AVG art. 5(1)(e), art. 30(1)(f)"
}

// ActivityFacts are what the status of a ProcessingActivity is made from:
// the objects of its namespace that may refer to it, and its retention
// policy (nil when it does not exist).
type ActivityFacts struct {
	Roles      []v1alpha1.AccessRole
	Agreements []v1alpha1.SharingAgreement
	Stores     []v1alpha1.DossierStore
	Retention  *v1alpha1.RetentionPolicy
	// ListFailed is true when the referrers could not be read.
	ListFailed bool
}

// ActivityView is the derived part of an activity's status.
type ActivityView struct {
	References []v1alpha1.ActivityReference
	Recipients []string
	Measures   []string
	Controls   []v1alpha1.ComplianceControl
}

// storeMeasures are the store controls that count as security measures of
// the activities using the store (AVG art. 30(1)(g), art. 32).
var storeMeasures = []string{
	v1alpha1.ControlEncryptionAtRest, v1alpha1.ControlKeyManagement, v1alpha1.ControlKeyAccess,
	v1alpha1.ControlNetworkSegregation, v1alpha1.ControlAuditActive, v1alpha1.ControlAuditSigningKey,
	v1alpha1.ControlAccessControlDefined,
}

// serves reports whether names holds the activity.
func serves(names []v1alpha1.ActivityName, activity string) bool {
	return slices.Contains(names, v1alpha1.ActivityName(activity))
}

// EvaluateActivity derives what refers to an activity, its recipients and
// measures, and checks that what is used under it is declared and that its
// retention is enforced.
func EvaluateActivity(a *v1alpha1.ProcessingActivity, f ActivityFacts) ActivityView {
	var v ActivityView
	usedStores := map[string]bool{}
	for _, r := range f.Roles {
		if serves(r.Spec.ProcessingActivities, a.Name) {
			v.References = append(v.References, v1alpha1.ActivityReference{Kind: "AccessRole", Name: r.Name, Categories: canonical(r.Spec.Categories)})
			usedStores[r.Spec.StoreRef.Name] = true
		}
	}
	for _, s := range f.Agreements {
		if serves(s.Spec.ProcessingActivities, a.Name) {
			v.References = append(v.References, v1alpha1.ActivityReference{Kind: "SharingAgreement", Name: s.Name, Categories: canonical(s.Spec.Categories)})
			v.Recipients = append(v.Recipients, fmt.Sprintf("%s (%s)", s.Spec.Partner.Name, s.Spec.Partner.Type))
			usedStores[s.Spec.StoreRef.Name] = true
		}
	}
	for _, st := range f.Stores {
		if st.Spec.Audit == nil {
			continue
		}
		for _, route := range st.Spec.Audit.Routes {
			if serves(route.ProcessingActivities, a.Name) {
				v.References = append(v.References, v1alpha1.ActivityReference{Kind: "DossierStore", Name: st.Name, Route: route.Name, Categories: canonical(route.Categories)})
				usedStores[st.Name] = true
			}
		}
	}
	sort.Slice(v.References, func(i, j int) bool {
		x, y := v.References[i], v.References[j]
		return x.Kind+"/"+x.Name+"/"+x.Route < y.Kind+"/"+y.Name+"/"+y.Route
	})
	slices.Sort(v.Recipients)
	v.Recipients = slices.Compact(v.Recipients)
	for _, st := range f.Stores {
		if !usedStores[st.Name] {
			continue
		}
		for _, c := range st.Status.Compliance {
			if c.Result == v1alpha1.ResultPass && slices.Contains(storeMeasures, c.Control) {
				v.Measures = append(v.Measures, fmt.Sprintf("%s (%s): DossierStore/%s", c.Control, c.Reference, st.Name))
			}
		}
	}
	slices.Sort(v.Measures)
	v.Controls = []v1alpha1.ComplianceControl{purposeLimitationControl(a, v.References, f.ListFailed), activityRetentionControl(a, f.Retention)}
	return v
}

func canonical(in []v1alpha1.DataCategory) []v1alpha1.DataCategory {
	var out []v1alpha1.DataCategory
	for _, c := range v1alpha1.AllDataCategories {
		if slices.Contains(in, c) {
			out = append(out, c)
		}
	}
	return out
}

func referenceName(r v1alpha1.ActivityReference) string {
	if r.Route != "" {
		return fmt.Sprintf("%s/%s route %s", r.Kind, r.Name, r.Route)
	}
	return r.Kind + "/" + r.Name
}

// purposeLimitationControl passes when every category used under the
// activity is one it declares.
func purposeLimitationControl(a *v1alpha1.ProcessingActivity, refs []v1alpha1.ActivityReference, listFailed bool) v1alpha1.ComplianceControl {
	if listFailed {
		return control(v1alpha1.ControlPurposeLimitation, v1alpha1.ResultUnknown, v1alpha1.ReasonReferencesNotListed,
			"the roles, agreements and stores that may serve the activity could not be read")
	}
	var (
		evidence []string
		problems []string
	)
	for _, r := range refs {
		var undeclared []string
		for _, c := range r.Categories {
			if !slices.Contains(a.Spec.DataCategories, c) {
				undeclared = append(undeclared, string(c))
			}
		}
		if len(undeclared) > 0 {
			problems = append(problems, fmt.Sprintf("%s uses %s", referenceName(r), strings.Join(undeclared, ", ")))
		}
		evidence = append(evidence, fmt.Sprintf("%s: %s", referenceName(r), joinCategories(r.Categories)))
	}
	if len(problems) > 0 {
		return control(v1alpha1.ControlPurposeLimitation, v1alpha1.ResultFail, v1alpha1.ReasonCategoriesNotDeclared,
			fmt.Sprintf("%s, which spec.dataCategories does not declare: add them to the activity or take them from the object", strings.Join(problems, "; ")), evidence...)
	}
	return control(v1alpha1.ControlPurposeLimitation, v1alpha1.ResultPass, v1alpha1.ReasonCategoriesCovered,
		fmt.Sprintf("the %d objects serving the activity use only categories it declares", len(refs)), evidence...)
}

// activityRetentionControl passes when the activity's RetentionPolicy
// exists and its RetentionEnforced control passes.
func activityRetentionControl(a *v1alpha1.ProcessingActivity, p *v1alpha1.RetentionPolicy) v1alpha1.ComplianceControl {
	name := a.Spec.Retention.PolicyRef.Name
	if p == nil {
		return control(v1alpha1.ControlActivityRetention, v1alpha1.ResultFail, v1alpha1.ReasonRetentionPolicyNotFound,
			fmt.Sprintf("spec.retention.policyRef names RetentionPolicy %s, which does not exist", name))
	}
	evidence := "RetentionPolicy/" + name
	for _, c := range p.Status.Compliance {
		if c.Control != v1alpha1.ControlRetentionEnforced {
			continue
		}
		evidence += fmt.Sprintf(": %s %s", c.Control, c.Result)
		if c.Result == v1alpha1.ResultPass {
			return control(v1alpha1.ControlActivityRetention, v1alpha1.ResultPass, v1alpha1.ReasonRetentionPasses,
				fmt.Sprintf("RetentionPolicy %s enforces the retention", name), evidence)
		}
		return control(v1alpha1.ControlActivityRetention, c.Result, v1alpha1.ReasonRetentionPolicyFailing,
			fmt.Sprintf("RetentionPolicy %s does not pass its RetentionEnforced control (%s)", name, c.Reason), evidence)
	}
	return control(v1alpha1.ControlActivityRetention, v1alpha1.ResultUnknown, v1alpha1.ReasonRetentionPolicyFailing,
		fmt.Sprintf("RetentionPolicy %s has no RetentionEnforced result yet", name), evidence)
}

// ActivitiesAssigned says whether an object names the activities it serves
// and whether they exist: the ActivityAssigned condition of roles and
// agreements. known holds the names of the namespace's activities.
func ActivitiesAssigned(names []v1alpha1.ActivityName, known map[string]bool) (ok bool, reason, message string) {
	if len(names) == 0 {
		return false, v1alpha1.ReasonNoActivity,
			"spec.processingActivities is empty: the object works as before, but the audit proxy cannot limit its requests by purpose; name the ProcessingActivities it serves (docs/processing-register.md)"
	}
	var missing []string
	for _, n := range names {
		if !known[string(n)] {
			missing = append(missing, string(n))
		}
	}
	if len(missing) > 0 {
		return false, v1alpha1.ReasonActivityNotFound,
			fmt.Sprintf("spec.processingActivities names %s, which does not exist in the namespace", strings.Join(missing, ", "))
	}
	return true, v1alpha1.ReasonActivitiesFound, fmt.Sprintf("serves %d processing activities", len(names))
}

// maxNamedRoutes bounds how many routes a RouteActivitiesAssigned message
// names.
const maxNamedRoutes = 10

// RouteActivitiesAssigned says whether every audit route of a store names
// the processing activities it serves and whether those exist: the
// ActivityAssigned summary condition of a DossierStore. known holds the
// names of the namespace's activities. A route naming an activity that does
// not exist (ActivityNotFound) is reported before routes naming none
// (NoActivity); both are warnings, as the routes keep working.
func RouteActivitiesAssigned(routes []v1alpha1.AuditRoute, known map[string]bool) (ok bool, reason, message string) {
	if len(routes) == 0 {
		return true, v1alpha1.ReasonActivitiesFound, "the store has no audit routes, so the audit proxy refuses every request"
	}
	var without, missing []string
	for _, r := range routes {
		if len(r.ProcessingActivities) == 0 {
			without = append(without, r.Name)
			continue
		}
		for _, n := range r.ProcessingActivities {
			if !known[string(n)] {
				missing = append(missing, fmt.Sprintf("%s (route %s)", n, r.Name))
			}
		}
	}
	switch {
	case len(missing) > 0:
		return false, v1alpha1.ReasonActivityNotFound,
			fmt.Sprintf("spec.audit.routes[].processingActivities names %s, which does not exist in the namespace; the audit proxy still decides by the names and records them as they are",
				namedList(missing))
	case len(without) > 0:
		return false, v1alpha1.ReasonNoActivity,
			fmt.Sprintf("%d of %d audit routes name no processing activity (%s): they work as before and their events record spec.audit.processingActivity, but the audit proxy cannot limit their requests by purpose; name the ProcessingActivities each serves in spec.audit.routes[].processingActivities (docs/processing-register.md)",
				len(without), len(routes), namedList(without))
	}
	return true, v1alpha1.ReasonActivitiesFound, fmt.Sprintf("every one of the %d audit routes serves processing activities that exist", len(routes))
}

// namedList joins at most maxNamedRoutes names, and says how many more.
func namedList(names []string) string {
	if len(names) <= maxNamedRoutes {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamedRoutes], ", "), len(names)-maxNamedRoutes)
}
