package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// setAgreementStatus computes an agreement's status from the verdict.
func setAgreementStatus(a *v1alpha1.SharingAgreement, v compliance.AgreementVerdict, policyExists bool) {
	st := &a.Status
	st.ObservedGeneration = a.Generation
	st.InForce = v.InForce && policyExists
	st.ClientNotificationRequired = v.NotifyClient
	st.NetworkPolicyName = ""
	if policyExists {
		st.NetworkPolicyName = resources.AgreementPolicyName(a)
	}
	st.NextTransition = nil
	if !v.NextTransition.IsZero() {
		st.NextTransition = &metav1.Time{Time: v.NextTransition}
	}
	st.Compliance = append(append([]v1alpha1.ComplianceControl{}, v.Controls...),
		compliance.TransferControl(v.InForce, policyExists, resources.AgreementPolicyName(a)))

	setCondition(a, &st.Conditions, v1alpha1.ConditionAgreementInForce, st.InForce, v.Reason, v.Message)
	setCompliantCondition(a, &st.Conditions, st.Compliance)
	switch v.Reason {
	case v1alpha1.ReasonMinimisationViolated, v1alpha1.ReasonStoreNotFound, v1alpha1.ReasonStoreNotReady, v1alpha1.ReasonReviewOverdue:
		setCondition(a, &st.Conditions, v1alpha1.ConditionReady, false, v.Reason, v.Message)
	default:
		if v.InForce != policyExists {
			setCondition(a, &st.Conditions, v1alpha1.ConditionReady, false, v1alpha1.ReasonDependencyUnavailable,
				"the partner's NetworkPolicy could not be brought in line with the agreement; see the operator's events")
			return
		}
		// Ready: the enforcement matches the agreement, in force or not.
		setCondition(a, &st.Conditions, v1alpha1.ConditionReady, true, v.Reason, v.Message)
	}
}

// setRoleStatus computes a role's status from the verdict.
func setRoleStatus(role *v1alpha1.AccessRole, v compliance.RoleVerdict, policyName, policyHash string) {
	st := &role.Status
	st.ObservedGeneration = role.Generation
	st.PolicyConfigMap, st.PolicyHash = policyName, policyHash
	st.ReviewDue = nil
	if v.ReviewDue != nil {
		st.ReviewDue = &metav1.Time{Time: *v.ReviewDue}
	}
	st.Compliance = v.Controls
	enforced := v.Enforceable && policyHash != ""
	message := v.Message
	reason := v.Reason
	if v.Enforceable && policyHash == "" {
		reason, message = v1alpha1.ReasonPolicyPending, "waiting for the store's access policy to be rendered"
	}
	setCondition(role, &st.Conditions, v1alpha1.ConditionEnforced, enforced, reason, message)
	setCompliantCondition(role, &st.Conditions, st.Compliance)
	setCondition(role, &st.Conditions, v1alpha1.ConditionReady, enforced, reason, message)
}
