package compliance

import (
	"fmt"
	"strings"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlSharingEnforced] = "AVG art. 5(1)(b), art. 6(1), art. 7(3); BIO 5.14"
}

// ProxyAgreement is what the SharingEnforced control needs of one agreement.
type ProxyAgreement struct {
	Name string
	// Admitted: the agreement admits the partner to the proxy (Ingress or Both).
	Admitted bool
	// PerDossier: consent is recorded per dossier and asked of the store's
	// consent source.
	PerDossier bool
}

// ProxyAgreementOf describes an agreement for SharingEnforcedControl.
func ProxyAgreementOf(a *v1alpha1.SharingAgreement) ProxyAgreement {
	d := a.Spec.Direction
	return ProxyAgreement{
		Name:     a.Name,
		Admitted: d == v1alpha1.DirectionIngress || d == v1alpha1.DirectionBoth,
		PerDossier: a.Spec.LegalBasis == v1alpha1.BasisConsent && a.Spec.Consent != nil &&
			a.Spec.Consent.EffectiveMode() == v1alpha1.ConsentPerDossier,
	}
}

// SharingEnforcedControl passes when every agreement that admits a partner
// to the audit proxy is in the rendered access policy (policyApplied) and
// every one with per-dossier consent has a consent source
// (consentSource: spec.audit.consentURL is set). It fails naming the
// agreements that are not enforced.
func SharingEnforcedControl(agreements []ProxyAgreement, policyApplied, consentSource bool, policy string) v1alpha1.ComplianceControl {
	var admitted, noSource []string
	for _, a := range agreements {
		if !a.Admitted {
			continue
		}
		admitted = append(admitted, a.Name)
		if a.PerDossier && !consentSource {
			noSource = append(noSource, a.Name)
		}
	}
	switch {
	case len(admitted) == 0:
		return control(v1alpha1.ControlSharingEnforced, v1alpha1.ResultPass, v1alpha1.ReasonNoProxyAgreements,
			"no sharing agreement admits a partner to the audit proxy")
	case !policyApplied:
		return control(v1alpha1.ControlSharingEnforced, v1alpha1.ResultFail, v1alpha1.ReasonAgreementNotRendered,
			fmt.Sprintf("the access policy could not be rendered, so the audit proxy does not enforce %s", strings.Join(admitted, ", ")),
			prefixed("SharingAgreement/", admitted)...)
	case len(noSource) > 0:
		return control(v1alpha1.ControlSharingEnforced, v1alpha1.ResultFail, v1alpha1.ReasonConsentSourceMissing,
			fmt.Sprintf("%s record consent per dossier, but the store has no spec.audit.consentURL: the audit proxy refuses every request under them", strings.Join(noSource, ", ")),
			prefixed("SharingAgreement/", noSource)...)
	}
	return control(v1alpha1.ControlSharingEnforced, v1alpha1.ResultPass, v1alpha1.ReasonAgreementsEnforced,
		fmt.Sprintf("the audit proxy decides every request of %d partner agreement(s) per request from the rendered access policy", len(admitted)),
		append([]string{"ConfigMap/" + policy}, prefixed("SharingAgreement/", admitted)...)...)
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// RoleReadiness says whether an enforced role works as written: a role
// limited to assigned cases needs the store's assignment source, and a
// subject of the role that is also a partner subject of one of the store's
// agreements gets nothing from the role (the proxy decides partners from
// agreements only). It returns ok, or the reason and a message that names
// subjects by their position and kind, never by name.
func RoleReadiness(role *v1alpha1.AccessRole, store *v1alpha1.DossierStore, agreements []v1alpha1.SharingAgreement) (bool, string, string) {
	if role.Spec.AssignedCasesOnly && (store == nil || store.Spec.Audit == nil || store.Spec.Audit.AssignmentURL == "") {
		return false, v1alpha1.ReasonAssignmentSourceMissing,
			"the role is limited to assigned cases, but the store has no spec.audit.assignmentURL: every request under it is refused until one is set"
	}
	var overlaps []string
	for i, s := range role.Spec.Subjects {
		for _, a := range agreements {
			if partnerNames(a.Spec.Partner.Subjects, s) {
				overlaps = append(overlaps, fmt.Sprintf("spec.subjects[%d] (%s) is a partner subject of SharingAgreement %s", i, s.Kind, a.Name))
				break
			}
		}
	}
	if len(overlaps) > 0 {
		return false, v1alpha1.ReasonPartnerSubjectOverlap,
			strings.Join(overlaps, "; ") + ": the audit proxy decides a partner's requests from its agreements only, so the role grants these subjects nothing"
	}
	return true, "", ""
}

func partnerNames(subjects []v1alpha1.PartnerSubject, s v1alpha1.Subject) bool {
	for _, p := range subjects {
		if string(p.Kind) == string(s.Kind) && p.Name == s.Name && p.Namespace == s.Namespace {
			return true
		}
	}
	return false
}
