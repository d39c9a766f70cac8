package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

// requestFacts is what a request's reconcile found.
type requestFacts struct {
	storeFound bool
	period     v1alpha1.Period
	// periodErr is set when the store's period cannot be used; the
	// assessment is then empty.
	periodErr  error
	assessment dsr.Assessment
	// maxExtension is the store's cap on retention extensions.
	maxExtension v1alpha1.Period
	// objection is what an Objection request reaches in its store.
	objection objectionFacts
}

// objectionFacts is what an Objection request names and reaches.
type objectionFacts struct {
	reach dsr.ObjectionReach
	// missingActivities are the named activities that do not exist in
	// the namespace.
	missingActivities []string
}

// setObjectionStatus shows what an Objection request reaches and the
// ObjectionScope condition: False (a warning) when a named activity or
// route does not exist, or a reached route cannot be filtered. Other types
// have neither.
func setObjectionStatus(req *v1alpha1.DataSubjectRequest, f requestFacts) {
	st := &req.Status
	o := req.Spec.Objection
	if req.Spec.Type != v1alpha1.RequestObjection || o == nil {
		st.Objection = nil
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionObjectionScope)
		return
	}
	r := f.objection.reach
	activities := make([]string, len(o.Activities))
	for i, a := range o.Activities {
		activities[i] = string(a)
	}
	slices.Sort(activities)
	st.Objection = &v1alpha1.ObjectionStatus{Routes: r.Routes, Activities: activities, FilteredRoutes: r.Filtered, UnfilterableRoutes: r.Unfilterable}
	var problems []string
	reason := ""
	add := func(why, text string) {
		if reason == "" {
			reason = why
		}
		problems = append(problems, text)
	}
	if !f.storeFound {
		add(v1alpha1.ReasonStoreNotFound, fmt.Sprintf("DossierStore %q does not exist in this namespace, so the routes the objection reaches are not known", req.Spec.StoreRef.Name))
	}
	if m := f.objection.missingActivities; len(m) > 0 {
		add(v1alpha1.ReasonActivityNotFound, fmt.Sprintf("ProcessingActivity %s does not exist in this namespace; the audit proxy refuses the routes that name it all the same", strings.Join(m, ", ")))
	}
	if f.storeFound && len(r.MissingRoutes) > 0 {
		add(v1alpha1.ReasonRouteNotFound, fmt.Sprintf("route %s is not one of the store's spec.audit.routes; nothing is refused for it", strings.Join(r.MissingRoutes, ", ")))
	}
	if len(r.Unfilterable) > 0 {
		add(v1alpha1.ReasonRouteUnfilterable, fmt.Sprintf("route %s has no {dossier} and no records, so while the objection is in effect the audit proxy refuses it whole, for every dossier; declare spec.audit.routes[].records to leave out only this dossier", strings.Join(r.Unfilterable, ", ")))
	}
	if reason != "" {
		setCondition(req, &st.Conditions, v1alpha1.ConditionObjectionScope, false, reason, strings.Join(problems, "; "))
		return
	}
	msg := "the objection reaches no route of the store"
	if len(r.Routes) > 0 {
		msg = "the objection reaches route " + strings.Join(r.Routes, ", ")
		if len(r.Filtered) > 0 {
			msg += "; the dossier is left out of the responses of " + strings.Join(r.Filtered, ", ")
		}
	}
	setCondition(req, &st.Conditions, v1alpha1.ConditionObjectionScope, true, v1alpha1.ReasonScopeResolved, msg)
}

// setRequestStatus computes a request's whole status from the facts, in
// memory. It holds the request's name, dates and vocabulary only: never the
// dossier's pseudonym.
func setRequestStatus(req *v1alpha1.DataSubjectRequest, f requestFacts) {
	st := &req.Status
	st.ObservedGeneration = req.Generation
	st.ResponsePeriod = string(f.period)
	conds := &st.Conditions
	setObjectionStatus(req, f)
	if f.periodErr != nil {
		st.DueDate, st.DueAt, st.State, st.Compliance = "", nil, "", nil
		setCondition(req, conds, v1alpha1.ConditionDeadlineMet, false, v1alpha1.ReasonInvalidResponsePeriod,
			"the store's spec.dataSubjectRights.responsePeriod cannot be used: "+f.periodErr.Error())
		setCompliantCondition(req, conds, []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlResponseDeadline,
			Reference: compliance.References[v1alpha1.ControlResponseDeadline], Result: v1alpha1.ResultUnknown,
			Reason: v1alpha1.ReasonInvalidResponsePeriod, Message: "no deadline can be computed"}})
		setCondition(req, conds, v1alpha1.ConditionReady, false, v1alpha1.ReasonInvalidResponsePeriod,
			"no deadline can be computed from the store's response period")
		return
	}
	a := f.assessment
	st.DueDate = a.Deadline.Date.String()
	st.DueAt = &metav1.Time{Time: a.Deadline.At}
	st.State = a.State
	deadline := compliance.ResponseDeadlineControl(a)
	st.Compliance = []v1alpha1.ComplianceControl{deadline}
	setCondition(req, conds, v1alpha1.ConditionDeadlineMet, deadline.Result == v1alpha1.ResultPass, deadline.Reason, deadline.Message)
	setCompliantCondition(req, conds, st.Compliance)
	if !f.storeFound {
		setCondition(req, conds, v1alpha1.ConditionReady, false, v1alpha1.ReasonStoreNotFound,
			fmt.Sprintf("DossierStore %q does not exist in this namespace; the deadline is reckoned with the default period %s", req.Spec.StoreRef.Name, f.period))
		return
	}
	if !setRetentionDecisions(req, f.maxExtension) {
		return
	}
	setCondition(req, conds, v1alpha1.ConditionReady, true, v1alpha1.ReasonRequestTracked,
		fmt.Sprintf("%s request, due %s (%s, %s from receipt); %s%s", req.Spec.Type, st.DueDate, dsr.TimeZone, responsePeriodText(req, f.period), a.State, effectText(req)))
}

// setRetentionDecisions sets what the sweeper does with the request: the
// extension in effect and the ExtensionWithinCap condition of a
// RetentionExtension request, the start of a dated erasure. It returns
// false when it has set Ready (False) itself: the end date lies beyond the
// cap, or the extension cannot be computed.
func setRetentionDecisions(req *v1alpha1.DataSubjectRequest, maxExtension v1alpha1.Period) bool {
	st := &req.Status
	conds := &st.Conditions
	st.RetentionExtension, st.ErasureNotBefore = nil, nil
	if from, err := dsr.ErasureNotBefore(req); err == nil && !from.IsZero() {
		st.ErasureNotBefore = &metav1.Time{Time: from}
	}
	if req.Spec.Type != v1alpha1.RequestRetentionExtension {
		return true
	}
	e, err := dsr.RetentionExtension(req, maxExtension)
	if err != nil {
		setCondition(req, conds, v1alpha1.ConditionExtensionWithinCap, false, v1alpha1.ReasonInvalidExtensionCap, err.Error())
		setCondition(req, conds, v1alpha1.ConditionReady, false, v1alpha1.ReasonInvalidExtensionCap,
			"the extension cannot be checked against the store's cap; the sweeper does not sweep the store until it can: "+err.Error())
		return false
	}
	if e.Granted {
		st.RetentionExtension = &v1alpha1.RetentionExtensionStatus{
			KeptUntil: e.KeptUntil.String(), EndsAt: metav1.Time{Time: e.Ends}, MaxRetentionExtension: string(maxExtension),
		}
	}
	if e.BeyondCap {
		msg := fmt.Sprintf("spec.retentionExtension.until %s lies beyond the store's spec.dataSubjectRights.maxRetentionExtension %s from the %s (at most %s); the extension beyond that day is refused",
			e.Requested, maxExtension, capBase(req), e.CapDate)
		setCondition(req, conds, v1alpha1.ConditionExtensionWithinCap, false, v1alpha1.ReasonEndDateBeyondCap, msg)
		setCondition(req, conds, v1alpha1.ConditionReady, false, v1alpha1.ReasonEndDateBeyondCap,
			msg+fmt.Sprintf(": the sweeper keeps the dossier until %s at most; correct the decision or file a new request", e.KeptUntil))
		return false
	}
	setCondition(req, conds, v1alpha1.ConditionExtensionWithinCap, true, v1alpha1.ReasonEndDateWithinCap,
		fmt.Sprintf("spec.retentionExtension.until %s is within the store's spec.dataSubjectRights.maxRetentionExtension %s from the %s (at most %s)",
			e.Requested, maxExtension, capBase(req), e.CapDate))
	return true
}

// capBase is what the cap runs from, for messages.
func capBase(req *v1alpha1.DataSubjectRequest) string {
	if req.Spec.Decision != nil {
		return "decision"
	}
	return "receipt (until decided)"
}

// effectText says, for the Ready message, what the sweeper does with a
// retention decision.
func effectText(req *v1alpha1.DataSubjectRequest) string {
	st := &req.Status
	switch {
	case st.RetentionExtension != nil:
		return fmt.Sprintf("; the sweeper keeps the dossier until %s (%s)", st.RetentionExtension.KeptUntil, dsr.TimeZone)
	case st.ErasureNotBefore != nil && req.Spec.Decision != nil && req.Spec.Decision.Outcome == v1alpha1.DecisionGranted:
		return fmt.Sprintf("; the sweeper erases the dossier from %s (%s)", req.Spec.Erasure.NotBefore, dsr.TimeZone)
	}
	return ""
}

// responsePeriodText is the period with its extension, for messages.
func responsePeriodText(req *v1alpha1.DataSubjectRequest, period v1alpha1.Period) string {
	if ext := req.Spec.Extension; ext != nil {
		return fmt.Sprintf("%s extended by %d month(s)", period, ext.Months)
	}
	return string(period)
}

// requestTransition is the Event a change of state calls for: whether
// there is one, its type, reason and message.
func requestTransition(t v1alpha1.RequestType, before, after v1alpha1.RequestState, dueDate string) (ok bool, eventType, reason, message string) {
	if before == after || after == "" {
		return false, "", "", ""
	}
	enforcer := "the audit proxy enforces it for the dossier"
	ended := "the audit proxy no longer enforces it"
	if t == v1alpha1.RequestRetentionExtension {
		enforcer = "the retention sweeper keeps the dossier's records until its end date"
		ended = "the retention sweeper no longer keeps the dossier's records beyond their retention period"
	}
	switch {
	case after == v1alpha1.StateOverdue:
		return true, corev1.EventTypeWarning, v1alpha1.ReasonRequestOverdue,
			fmt.Sprintf("the request is past its deadline of %s (%s) and not decided", dueDate, dsr.TimeZone)
	case after == v1alpha1.StateInEffect:
		return true, corev1.EventTypeNormal, v1alpha1.ReasonEffectStarted, "the decision is in effect: " + enforcer
	case before == v1alpha1.StateInEffect:
		return true, corev1.EventTypeNormal, v1alpha1.ReasonEffectEnded, "the request's effect has ended: " + ended
	}
	return false, "", "", ""
}

// recordRequestTransitions emits the Events of a change of state and of an
// end date that lies beyond the store's cap.
func (r *DataSubjectRequestReconciler) recordRequestTransitions(before, after *v1alpha1.DataSubjectRequest) {
	if ok, typ, reason, msg := requestTransition(after.Spec.Type, before.Status.State, after.Status.State, after.Status.DueDate); ok {
		r.Recorder.Eventf(after, nil, typ, reason, "Reconcile", "%s", msg)
	}
	if c := beyondCap(after); c != nil && beyondCap(before) == nil {
		r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, v1alpha1.ReasonExtensionBeyondCap, "Reconcile", "%s", c.Message)
	}
}

// beyondCap is the ExtensionWithinCap condition when it says the end date
// lies beyond the cap, else nil.
func beyondCap(req *v1alpha1.DataSubjectRequest) *metav1.Condition {
	c := meta.FindStatusCondition(req.Status.Conditions, v1alpha1.ConditionExtensionWithinCap)
	if c == nil || c.Reason != v1alpha1.ReasonEndDateBeyondCap {
		return nil
	}
	return c
}
