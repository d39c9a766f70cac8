package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// retentionFacts is what the policy's reconcile found.
type retentionFacts struct {
	now          time.Time
	store        *v1alpha1.DossierStore
	sweeperReady bool
	scheduleErr  error
	checks       []compliance.RuleCheck
	enforcement  compliance.EnforcementFacts
}

// setRetentionStatus computes a policy's status; the sweeper's lastRun is
// kept as it reported it.
func setRetentionStatus(p *v1alpha1.RetentionPolicy, f retentionFacts) {
	st := &p.Status
	st.ObservedGeneration = p.Generation
	st.Periods = compliance.Periods(p.Spec.Rules)
	st.CronJobName = ""
	if f.sweeperReady {
		st.CronJobName = resources.SweeperName(p)
	}
	st.NextRun = nil
	if f.enforcement.Schedule != nil && !p.Spec.Suspend {
		st.NextRun = &metav1.Time{Time: f.enforcement.Schedule.Next(f.now).UTC()}
	}
	enforced := compliance.EnforcementControl(f.enforcement, f.now)
	if p.Spec.Suspend {
		enforced.Result, enforced.Reason, enforced.Message = v1alpha1.ResultFail, v1alpha1.ReasonSuspended, "the sweep is suspended; nothing is destroyed"
	}
	st.Compliance = []v1alpha1.ComplianceControl{enforced}
	if f.store != nil {
		st.Compliance = append([]v1alpha1.ComplianceControl{compliance.StatutoryControl(f.checks)}, st.Compliance...)
	}

	switch {
	case f.scheduleErr != nil:
		setCondition(p, &st.Conditions, v1alpha1.ConditionSweeperScheduled, false, v1alpha1.ReasonInvalidSchedule, f.scheduleErr.Error())
	case !f.sweeperReady:
		setCondition(p, &st.Conditions, v1alpha1.ConditionSweeperScheduled, false, v1alpha1.ReasonDependencyUnavailable,
			"the sweeper's CronJob could not be applied; see the operator's events")
	default:
		setCondition(p, &st.Conditions, v1alpha1.ConditionSweeperScheduled, true, v1alpha1.ReasonCronJobApplied,
			fmt.Sprintf("CronJob %s runs %q (%s)", resources.SweeperName(p), p.Spec.Schedule, timeZone(p)))
	}
	setCondition(p, &st.Conditions, v1alpha1.ConditionRetentionEnforced, enforced.Result == v1alpha1.ResultPass, enforced.Reason, enforced.Message)
	setCompliantCondition(p, &st.Conditions, st.Compliance)
	switch {
	case f.store == nil:
		setCondition(p, &st.Conditions, v1alpha1.ConditionReady, false, v1alpha1.ReasonStoreNotFound,
			fmt.Sprintf("DossierStore %q does not exist", p.Spec.StoreRef.Name))
	case f.scheduleErr != nil || !f.sweeperReady:
		setCondition(p, &st.Conditions, v1alpha1.ConditionReady, false, v1alpha1.ReasonDependencyUnavailable, "the sweeper is not scheduled")
	default:
		setCondition(p, &st.Conditions, v1alpha1.ConditionReady, true, v1alpha1.ReasonSweeperScheduled,
			"the retention sweep is scheduled; see RetentionEnforced for its runs")
	}
}

func timeZone(p *v1alpha1.RetentionPolicy) string {
	if p.Spec.TimeZone == "" {
		return "UTC"
	}
	return p.Spec.TimeZone
}
