package compliance

import (
	"fmt"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlNeedToKnow] = "AVG art. 5(1)(c), art. 25; BIO 8.3"
	References[v1alpha1.ControlBreakGlassReview] = "AVG art. 32(1)(d); BIO 5.18, 8.2"
	References[v1alpha1.ControlAccessControlDefined] = "AVG art. 25, art. 32(1)(b); BIO 5.15, 8.3"
	References[v1alpha1.ControlMinimisation] = "AVG art. 5(1)(c)"
}

// RoleVerdict is the outcome of an AccessRole's checks.
type RoleVerdict struct {
	// Enforceable roles go into the store's access policy.
	Enforceable bool
	Reason      string
	Message     string
	// ReviewDue is when a break-glass role must next be reviewed.
	ReviewDue *time.Time
	Controls  []v1alpha1.ComplianceControl
}

// EvaluateRole checks a role against its store. A role that grants
// categories the store does not hold is not enforced (fail closed); an
// overdue break-glass review makes the role non-compliant but leaves it
// enforced, so that emergency access for a child's safety is not cut off
// by an administrative delay.
func EvaluateRole(role *v1alpha1.AccessRole, store StoreView, now time.Time) RoleVerdict {
	v := RoleVerdict{}
	needToKnow := needToKnowControl(role, store)
	review, due := breakGlassControl(role, now)
	v.ReviewDue = due
	v.Controls = []v1alpha1.ComplianceControl{needToKnow, review}
	switch {
	case !store.Found:
		v.Reason, v.Message = v1alpha1.ReasonStoreNotFound, fmt.Sprintf("DossierStore %q does not exist", role.Spec.StoreRef.Name)
	case needToKnow.Result != v1alpha1.ResultPass:
		v.Reason, v.Message = needToKnow.Reason, needToKnow.Message+"; the role is left out of the access policy"
	default:
		v.Enforceable, v.Reason = true, v1alpha1.ReasonRoleEnforced
		v.Message = fmt.Sprintf("%s of %s for %d subject(s), in the store's access policy",
			joinActions(role.Spec.Actions), joinCategories(role.Spec.Categories), len(role.Spec.Subjects))
	}
	return v
}

func needToKnowControl(role *v1alpha1.AccessRole, store StoreView) v1alpha1.ComplianceControl {
	if !store.Found {
		return control(v1alpha1.ControlNeedToKnow, v1alpha1.ResultFail, v1alpha1.ReasonStoreNotFound, "the store does not exist")
	}
	if extra := missing(role.Spec.Categories, store.Categories); len(extra) > 0 {
		return control(v1alpha1.ControlNeedToKnow, v1alpha1.ResultFail, v1alpha1.ReasonCategoriesNotInStore,
			fmt.Sprintf("categories %s are not held by store %s", joinCategories(extra), role.Spec.StoreRef.Name))
	}
	msg := fmt.Sprintf("grants %s of the store's %s for: %s", joinCategories(role.Spec.Categories), joinCategories(store.Categories), role.Spec.Purpose)
	if role.Spec.AssignedCasesOnly {
		msg += "; only assigned cases"
	}
	return control(v1alpha1.ControlNeedToKnow, v1alpha1.ResultPass, v1alpha1.ReasonWithinStore, msg)
}

func breakGlassControl(role *v1alpha1.AccessRole, now time.Time) (v1alpha1.ComplianceControl, *time.Time) {
	bg := role.Spec.BreakGlass
	if bg == nil {
		return control(v1alpha1.ControlBreakGlassReview, v1alpha1.ResultPass, v1alpha1.ReasonNotBreakGlass, "not a break-glass role"), nil
	}
	since := role.CreationTimestamp.Time
	if bg.LastReviewed != nil {
		since = bg.LastReviewed.Time
	}
	due := AddPeriod(since, bg.ReviewPeriod)
	if !now.Before(due) {
		return control(v1alpha1.ControlBreakGlassReview, v1alpha1.ResultFail, v1alpha1.ReasonReviewOverdue,
			fmt.Sprintf("the break-glass role was due for review at %s; review it and set spec.breakGlass.lastReviewed", stamp(due))), &due
	}
	return control(v1alpha1.ControlBreakGlassReview, v1alpha1.ResultPass, v1alpha1.ReasonReviewCurrent,
		"break-glass role; next review due "+stamp(due), "justification recorded"), &due
}

// AddPeriod adds a validated period to t (v1alpha1.Period.AddTo). An
// invalid period adds nothing, which makes a review due at once.
func AddPeriod(t time.Time, p v1alpha1.Period) time.Time {
	if u, err := p.AddTo(t); err == nil {
		return u
	}
	return t
}

func joinActions(as []v1alpha1.Action) string {
	out := ""
	for i, a := range as {
		if i > 0 {
			out += "/"
		}
		out += string(a)
	}
	return out
}

// RoleSummary is what a store knows of one of its roles.
type RoleSummary struct {
	Name        string
	Enforceable bool
}

// AccessControlControl passes when at least one role is enforced and none
// was rejected.
func AccessControlControl(roles []RoleSummary, policyConfigMap string) v1alpha1.ComplianceControl {
	if len(roles) == 0 {
		return control(v1alpha1.ControlAccessControlDefined, v1alpha1.ResultFail, v1alpha1.ReasonNoRoles,
			"no AccessRole grants access to this store; the audit proxy denies every request")
	}
	var rejected []string
	for _, r := range roles {
		if !r.Enforceable {
			rejected = append(rejected, r.Name)
		}
	}
	evidence := []string{"ConfigMap/" + policyConfigMap}
	for _, r := range roles {
		evidence = append(evidence, "AccessRole/"+r.Name)
	}
	if len(rejected) > 0 {
		return control(v1alpha1.ControlAccessControlDefined, v1alpha1.ResultFail, v1alpha1.ReasonRoleRejected,
			fmt.Sprintf("roles %v grant categories the store does not hold and are not enforced", rejected), evidence...)
	}
	return control(v1alpha1.ControlAccessControlDefined, v1alpha1.ResultPass, v1alpha1.ReasonRolesDefined,
		fmt.Sprintf("%d access role(s) rendered into the access policy", len(roles)), evidence...)
}

// MinimisationControl passes when none of a store's agreements shares more
// than allowed.
func MinimisationControl(violating []string, agreements int) v1alpha1.ComplianceControl {
	if len(violating) > 0 {
		evidence := make([]string, 0, len(violating))
		for _, v := range violating {
			evidence = append(evidence, "SharingAgreement/"+v)
		}
		return control(v1alpha1.ControlMinimisation, v1alpha1.ResultFail, v1alpha1.ReasonMinimisationViolated,
			fmt.Sprintf("%d sharing agreement(s) would share more than allowed and are not in force", len(violating)), evidence...)
	}
	return control(v1alpha1.ControlMinimisation, v1alpha1.ResultPass, v1alpha1.ReasonNoViolations,
		fmt.Sprintf("all %d sharing agreement(s) stay within the store's categories and their partner's maximum", agreements))
}
