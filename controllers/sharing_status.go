package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// setAgreementStatus computes an agreement's status from the verdict.
func setAgreementStatus(a *v1alpha1.SharingAgreement, v compliance.AgreementVerdict, policyExists, proxyEnforced bool) {
	st := &a.Status
	st.ObservedGeneration = a.Generation
	st.InForce = v.InForce && policyExists
	st.ConsentMode = ""
	if a.Spec.LegalBasis == v1alpha1.BasisConsent && a.Spec.Consent != nil {
		st.ConsentMode = a.Spec.Consent.EffectiveMode()
	}
	st.ProxyEnforced = proxyEnforced
	st.ClientNotificationRequired = v.NotifyClient
	st.NetworkPolicyName = ""
	if policyExists && resources.AgreementPolicyNeeded(a) {
		st.NetworkPolicyName = resources.AgreementPolicyName(a)
	}
	st.NextTransition = nil
	if !v.NextTransition.IsZero() {
		st.NextTransition = &metav1.Time{Time: v.NextTransition}
	}
	// An outbound agreement's partner is reached by the gateway's policy.
	transferPolicy := resources.AgreementPolicyName(a)
	if !resources.AgreementPolicyNeeded(a) {
		transferPolicy = resources.EgressGatewayNameOf(a.Spec.StoreRef.Name)
	}
	st.Compliance = append(append([]v1alpha1.ComplianceControl{}, v.Controls...),
		compliance.TransferControl(v.InForce, policyExists, transferPolicy))

	reason, message := v.Reason, v.Message
	if v.InForce && !policyExists {
		// In force by its terms, but the partner cannot reach the proxy:
		// say why it is not in force instead of "InForce".
		reason, message = v1alpha1.ReasonDependencyUnavailable,
			"the agreement is in force by its terms, but the partner's NetworkPolicy could not be applied; see the operator's events"
	}
	setCondition(a, &st.Conditions, v1alpha1.ConditionAgreementInForce, st.InForce, reason, message)
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

// roleReadiness is whether an enforced role works as written
// (compliance.RoleReadiness).
type roleReadiness struct {
	ok              bool
	reason, message string
}

// setRoleStatus computes a role's status from the verdict. A role that is
// enforced but cannot work as written (limited to assigned cases without an
// assignment source, or naming a partner's subject) is not Ready, with the
// reason; Enforced still says it is in the access policy.
func setRoleStatus(role *v1alpha1.AccessRole, v compliance.RoleVerdict, policyName, policyHash string, rr roleReadiness) {
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
	if enforced && !rr.ok {
		setCondition(role, &st.Conditions, v1alpha1.ConditionReady, false, rr.reason, rr.message)
		return
	}
	setCondition(role, &st.Conditions, v1alpha1.ConditionReady, enforced, reason, message)
}
