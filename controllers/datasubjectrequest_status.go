package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
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
}

// setRequestStatus computes a request's whole status from the facts, in
// memory. It holds the request's name, dates and vocabulary only: never the
// dossier's pseudonym.
func setRequestStatus(req *v1alpha1.DataSubjectRequest, f requestFacts) {
	st := &req.Status
	st.ObservedGeneration = req.Generation
	st.ResponsePeriod = string(f.period)
	conds := &st.Conditions
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
	setCondition(req, conds, v1alpha1.ConditionReady, true, v1alpha1.ReasonRequestTracked,
		fmt.Sprintf("%s request, due %s (%s, %s from receipt); %s", req.Spec.Type, st.DueDate, dsr.TimeZone, responsePeriodText(req, f.period), a.State))
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
func requestTransition(before, after v1alpha1.RequestState, dueDate string) (ok bool, eventType, reason, message string) {
	if before == after || after == "" {
		return false, "", "", ""
	}
	switch {
	case after == v1alpha1.StateOverdue:
		return true, corev1.EventTypeWarning, v1alpha1.ReasonRequestOverdue,
			fmt.Sprintf("the request is past its deadline of %s (%s) and not decided", dueDate, dsr.TimeZone)
	case after == v1alpha1.StateInEffect:
		return true, corev1.EventTypeNormal, v1alpha1.ReasonEffectStarted,
			"the decision is in effect: the audit proxy enforces it for the dossier"
	case before == v1alpha1.StateInEffect:
		return true, corev1.EventTypeNormal, v1alpha1.ReasonEffectEnded,
			"the request's effect has ended: the audit proxy no longer enforces it"
	}
	return false, "", "", ""
}

// recordRequestTransitions emits the Event of a change of state.
func (r *DataSubjectRequestReconciler) recordRequestTransitions(before, after *v1alpha1.DataSubjectRequest) {
	if ok, typ, reason, msg := requestTransition(before.Status.State, after.Status.State, after.Status.DueDate); ok {
		r.Recorder.Eventf(after, nil, typ, reason, "Reconcile", "%s", msg)
	}
}
