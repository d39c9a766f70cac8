package compliance

import (
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestSharingEnforcedControl(t *testing.T) {
	school := ProxyAgreement{Name: "school", Admitted: true, PerDossier: true}
	gp := ProxyAgreement{Name: "gp", Admitted: true}
	billing := ProxyAgreement{Name: "billing"}
	cases := []struct {
		name          string
		agreements    []ProxyAgreement
		applied, src  bool
		result        v1alpha1.ComplianceResult
		reason, names string
	}{
		{"none", nil, true, false, v1alpha1.ResultPass, v1alpha1.ReasonNoProxyAgreements, ""},
		{"egress only", []ProxyAgreement{billing}, false, false, v1alpha1.ResultPass, v1alpha1.ReasonNoProxyAgreements, ""},
		{"enforced", []ProxyAgreement{school, gp, billing}, true, true, v1alpha1.ResultPass, v1alpha1.ReasonAgreementsEnforced, "school"},
		{"whole-agreement consent needs no source", []ProxyAgreement{gp}, true, false, v1alpha1.ResultPass, v1alpha1.ReasonAgreementsEnforced, "gp"},
		{"not rendered", []ProxyAgreement{school, gp}, false, true, v1alpha1.ResultFail, v1alpha1.ReasonAgreementNotRendered, "school, gp"},
		{"no consent source", []ProxyAgreement{school, gp}, true, false, v1alpha1.ResultFail, v1alpha1.ReasonConsentSourceMissing, "school"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := SharingEnforcedControl(tc.agreements, tc.applied, tc.src, "s-access-policy")
			if c.Control != v1alpha1.ControlSharingEnforced || c.Result != tc.result || c.Reason != tc.reason || c.Reference == "" {
				t.Fatalf("%+v", c)
			}
			if !strings.Contains(c.Message+strings.Join(c.Evidence, " "), tc.names) {
				t.Errorf("%q / %v does not name %q", c.Message, c.Evidence, tc.names)
			}
			if tc.reason == v1alpha1.ReasonConsentSourceMissing && strings.Contains(c.Message, "gp") {
				t.Errorf("names an agreement that needs no consent source: %q", c.Message)
			}
		})
	}
}

func TestRoleReadiness(t *testing.T) {
	withURL := &v1alpha1.DossierStore{Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{AssignmentURL: "https://cases/{user}/{dossier}"}}}
	without := &v1alpha1.DossierStore{}
	role := func(assigned bool, subjects ...v1alpha1.Subject) *v1alpha1.AccessRole {
		return &v1alpha1.AccessRole{Spec: v1alpha1.AccessRoleSpec{AssignedCasesOnly: assigned, Subjects: subjects}}
	}
	agreement := v1alpha1.SharingAgreement{}
	agreement.Name = "school"
	agreement.Spec.Partner.Subjects = []v1alpha1.PartnerSubject{
		{Kind: v1alpha1.PartnerSubjectGroup, Name: "zorgteam"},
		{Kind: v1alpha1.PartnerSubjectClient, Name: "coaches"},
		{Kind: v1alpha1.PartnerSubjectServiceAccount, Namespace: "school", Name: "lvs"},
	}
	coaches := v1alpha1.Subject{Kind: v1alpha1.SubjectGroup, Name: "coaches"}
	cases := []struct {
		name   string
		role   *v1alpha1.AccessRole
		store  *v1alpha1.DossierStore
		reason string
	}{
		{"plain role", role(false, coaches), without, ""},
		{"assigned with a source", role(true, coaches), withURL, ""},
		{"assigned without a source", role(true, coaches), without, v1alpha1.ReasonAssignmentSourceMissing},
		{"a client named like a group is no overlap", role(false, coaches), withURL, ""},
		{"group overlap", role(false, coaches, v1alpha1.Subject{Kind: v1alpha1.SubjectGroup, Name: "zorgteam"}), withURL, v1alpha1.ReasonPartnerSubjectOverlap},
		{"service account overlap", role(false, v1alpha1.Subject{Kind: v1alpha1.SubjectServiceAccount, Namespace: "school", Name: "lvs"}), withURL, v1alpha1.ReasonPartnerSubjectOverlap},
		{"service account in another namespace", role(false, v1alpha1.Subject{Kind: v1alpha1.SubjectServiceAccount, Namespace: "other", Name: "lvs"}), withURL, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason, msg := RoleReadiness(tc.role, tc.store, []v1alpha1.SharingAgreement{agreement})
			if ok != (tc.reason == "") || reason != tc.reason {
				t.Errorf("got %v %q (%s), want %q", ok, reason, msg, tc.reason)
			}
			if strings.Contains(msg, "zorgteam") || strings.Contains(msg, "lvs") {
				t.Errorf("the message names a subject: %q", msg)
			}
		})
	}
}
