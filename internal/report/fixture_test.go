package report

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The fixed input of the golden file and of the model tests: one store of
// each verdict, their roles, agreements and policies, and an orphan.
var fixtureNow = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)

func fixtureMeta(lang Lang) Meta {
	return Meta{
		Lang: lang, GeneratedAt: fixtureNow, GeneratedBy: "auditor@gemeente.example",
		Cluster: "gemeente-prod", Server: "https://api.gemeente-prod.example:6443", Namespace: "", Version: "v1.2.3",
	}
}

func ts(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func status(generation int64, compliant metav1.ConditionStatus, reason string, controls ...v1alpha1.ComplianceControl) v1alpha1.CommonStatus {
	return v1alpha1.CommonStatus{
		ObservedGeneration: generation,
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "StoreReady"},
			{Type: v1alpha1.ConditionCompliant, Status: compliant, Reason: reason},
		},
		Compliance: controls,
	}
}

func ctl(name string, result v1alpha1.ComplianceResult, reason, message string, evidence ...string) v1alpha1.ComplianceControl {
	return v1alpha1.ComplianceControl{Control: name, Reference: "ref " + name, Result: result, Reason: reason, Message: message, Evidence: evidence}
}

func fixtureInput() Input {
	meta := func(ns, name string, gen int64) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Generation: gen}
	}
	return Input{
		Stores: []v1alpha1.DossierStore{
			{
				ObjectMeta: meta("wijkteam", "wijkteam-dossiers", 2),
				Spec: v1alpha1.DossierStoreSpec{
					Service: v1alpha1.ServiceNeighbourhoodTeam, Organisation: "Gemeente Voorbeeldstad, Sociaal Wijkteam",
					DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryPlan},
				},
				Status: v1alpha1.DossierStoreStatus{
					CommonStatus: status(2, metav1.ConditionTrue, v1alpha1.ReasonAllControlsPass,
						ctl(v1alpha1.ControlEncryptionAtRest, v1alpha1.ResultPass, "VerifiedByParameters", "StorageClass \"encrypted-ssd\" encrypts at rest",
							"PersistentVolumeClaim/wijkteam-dossiers-dossiers", "StorageClass/encrypted-ssd: provisioner ebs.csi.aws.com, parameter encrypted=true"),
						ctl(v1alpha1.ControlNetworkSegregation, v1alpha1.ResultPass, "DefaultDenyApplied", "default deny", "NetworkPolicy/wijkteam-dossiers-isolation"),
					),
					Encryption: "Verified", KeyVersion: 3, NextKeyRotation: ts(fixtureNow.Add(48 * time.Hour)),
				},
			},
			{
				ObjectMeta: meta("cjg", "cjg-dossiers", 1),
				Spec: v1alpha1.DossierStoreSpec{
					Service: v1alpha1.ServiceYouthAndFamilyCentre, Organisation: "CJG Voorbeeldstad",
					DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryHealth},
				},
				Status: v1alpha1.DossierStoreStatus{
					CommonStatus: status(1, metav1.ConditionFalse, v1alpha1.ReasonControlFailed,
						ctl(v1alpha1.ControlEncryptionAtRest, v1alpha1.ResultFail, "NoEncryptionEvidence", "StorageClass \"standard\" has no parameter known to encrypt at rest"),
						ctl(v1alpha1.ControlAuditActive, v1alpha1.ResultPass, "AllPodsAudited", "all pods audited", "Secret/cjg-dossiers-proxy-tls"),
					),
					Encryption: "Unverified",
				},
			},
			{
				// Never reconciled: no status at all.
				ObjectMeta: meta("cjg", "nieuw", 1),
				Spec:       v1alpha1.DossierStoreSpec{Service: v1alpha1.ServiceYouthCare, Organisation: "Jeugdhulp Voorbeeldstad"},
			},
		},
		Roles: []v1alpha1.AccessRole{
			{
				ObjectMeta: meta("wijkteam", "wijkcoach", 1),
				Spec: v1alpha1.AccessRoleSpec{
					StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"},
					Subjects: []v1alpha1.Subject{
						{Kind: v1alpha1.SubjectGroup, Name: "wijkteam-coaches"},
						{Kind: v1alpha1.SubjectUser, Name: "j.devries@gemeente.example"},
						{Kind: v1alpha1.SubjectServiceAccount, Namespace: "wijkteam", Name: "planner"},
					},
					Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryPlan},
					Actions:    []v1alpha1.Action{v1alpha1.ActionRead, v1alpha1.ActionWrite},
					Purpose:    "Ondersteuning van inwoners", AssignedCasesOnly: true,
				},
				Status: v1alpha1.AccessRoleStatus{CommonStatus: status(1, metav1.ConditionTrue, v1alpha1.ReasonAllControlsPass,
					ctl(v1alpha1.ControlNeedToKnow, v1alpha1.ResultPass, "WithinStoreCategories", "within the store"))},
			},
			{
				ObjectMeta: meta("wijkteam", "noodtoegang", 3),
				Spec: v1alpha1.AccessRoleSpec{
					StoreRef:   v1alpha1.StoreReference{Name: "wijkteam-dossiers"},
					Subjects:   []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "wijkteam-crisis"}},
					Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
					Actions:    []v1alpha1.Action{v1alpha1.ActionRead},
					Purpose:    "Crisisinterventie buiten kantoortijd",
					BreakGlass: &v1alpha1.BreakGlass{ReviewPeriod: "P30D"}, Justification: "Veiligheid van het kind gaat voor",
				},
				// Reconciled for generation 2: stale.
				Status: v1alpha1.AccessRoleStatus{
					CommonStatus: status(2, metav1.ConditionTrue, v1alpha1.ReasonAllControlsPass,
						ctl(v1alpha1.ControlNeedToKnow, v1alpha1.ResultPass, "WithinStoreCategories", "within the store"),
						ctl(v1alpha1.ControlBreakGlassReview, v1alpha1.ResultPass, "ReviewCurrent", "review current")),
					ReviewDue: ts(fixtureNow.Add(10 * 24 * time.Hour)),
				},
			},
		},
		Agreements: []v1alpha1.SharingAgreement{
			{
				ObjectMeta: meta("wijkteam", "basisschool-de-regenboog", 1),
				Spec: v1alpha1.SharingAgreementSpec{
					StoreRef:   v1alpha1.StoreReference{Name: "wijkteam-dossiers"},
					Partner:    v1alpha1.Partner{Type: v1alpha1.PartnerSchool, Name: "Basisschool De Regenboog", CIDRs: []string{"192.0.2.0/28"}},
					Direction:  v1alpha1.DirectionIngress,
					LegalBasis: v1alpha1.BasisConsent,
					Consent:    &v1alpha1.Consent{Mode: v1alpha1.ConsentAgreement, Reference: "TOE-2026-000123"},
					Categories: []v1alpha1.DataCategory{v1alpha1.CategoryPlan},
					Purpose:    "Afstemmen van ondersteuning op school",
					ValidFrom:  ts(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)), ValidUntil: ts(time.Date(2027, 7, 17, 0, 0, 0, 0, time.UTC)),
				},
				Status: v1alpha1.SharingAgreementStatus{
					CommonStatus: status(1, metav1.ConditionTrue, v1alpha1.ReasonAllControlsPass,
						ctl(v1alpha1.ControlLawfulBasis, v1alpha1.ResultPass, "ConsentRecorded", "consent recorded"),
						ctl(v1alpha1.ControlTransferControl, v1alpha1.ResultPass, "InForce", "in force", "NetworkPolicy/share-basisschool-de-regenboog")),
					InForce: true, ProxyEnforced: true, NextTransition: ts(time.Date(2027, 7, 17, 0, 0, 0, 0, time.UTC)),
				},
			},
			{
				ObjectMeta: meta("cjg", "veilig-thuis-melding", 1),
				Spec: v1alpha1.SharingAgreementSpec{
					StoreRef:      v1alpha1.StoreReference{Name: "cjg-dossiers"},
					Partner:       v1alpha1.Partner{Type: v1alpha1.PartnerVeiligThuis, Name: "Veilig Thuis Voorbeeldregio", Namespace: "veilig-thuis"},
					LegalBasis:    v1alpha1.BasisVitalInterest,
					Justification: "Meldcode stap 5: acute onveiligheid van een kind",
					ReviewDate:    ts(time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)),
					Categories:    []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
					Purpose:       "Melding bij Veilig Thuis",
				},
				Status: v1alpha1.SharingAgreementStatus{
					CommonStatus: status(1, metav1.ConditionFalse, v1alpha1.ReasonControlFailed,
						ctl(v1alpha1.ControlLawfulBasis, v1alpha1.ResultUnknown, "ReviewPending", "review pending")),
					ClientNotificationRequired: true,
				},
			},
		},
		Policies: []v1alpha1.RetentionPolicy{
			{
				ObjectMeta: meta("wijkteam", "wijkteam-bewaartermijn", 1),
				Spec: v1alpha1.RetentionPolicySpec{
					StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"},
					Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "wijkteam-db"},
					Schedule: "30 2 * * *", TimeZone: "Europe/Amsterdam",
					Rules: []v1alpha1.RetentionRule{{
						Name: "wmo", Description: "Wmo-dossiers", Table: "dossiers", Period: "P15Y",
						Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockEndOfHelp, Column: "einde_hulp"},
						LegalHoldColumn: "legal_hold", ExtensionColumn: "verlengd_tot",
					}},
				},
				Status: v1alpha1.RetentionPolicyStatus{
					CommonStatus: status(1, metav1.ConditionTrue, v1alpha1.ReasonAllControlsPass,
						ctl(v1alpha1.ControlStatutoryRetention, v1alpha1.ResultPass, "WithinStatute", "within statute"),
						ctl(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultPass, "LastRunSucceeded", "last run succeeded", "CronJob/wijkteam-bewaartermijn-sweep")),
					LastRun: &v1alpha1.RetentionRun{
						StartTime: metav1.NewTime(fixtureNow.Add(-7 * time.Hour)), EndTime: ts(fixtureNow.Add(-7*time.Hour + 42*time.Second)),
						Result: v1alpha1.RunSucceeded, Destroyed: 12, Held: 2,
						ProofDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
					},
					NextRun: ts(fixtureNow.Add(17 * time.Hour)),
				},
			},
			{
				ObjectMeta: meta("cjg", "oud-beleid", 1),
				Spec: v1alpha1.RetentionPolicySpec{
					StoreRef: v1alpha1.StoreReference{Name: "opgeheven"},
					Schedule: "@daily",
					Rules:    []v1alpha1.RetentionRule{{Name: "alles", Table: "dossiers", Period: "P20Y", Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "gesloten"}}},
				},
			},
		},
		Requests: []v1alpha1.DataSubjectRequest{
			fixtureRequest("wijkteam", "inzage-2026-0051", "wijkteam-dossiers", v1alpha1.RequestAccess, "2026-12-22", v1alpha1.StateOpen, false),
			fixtureRequest("wijkteam", "correctie-2026-0012", "wijkteam-dossiers", v1alpha1.RequestRectification, "2026-11-27", v1alpha1.StateOverdue, false),
			fixtureRequest("wijkteam", "afscherming-2026-0007", "wijkteam-dossiers", v1alpha1.RequestRestriction, "2026-11-30", v1alpha1.StateInEffect, true),
			fixtureRequest("cjg", "verzet-2026-0003", "opgeheven", v1alpha1.RequestObjection, "2026-12-20", v1alpha1.StateOpen, false),
		},
	}
}

// fixtureRequest is a DataSubjectRequest; decided ones are not open.
func fixtureRequest(ns, name, store string, typ v1alpha1.RequestType, due string, state v1alpha1.RequestState, decided bool) v1alpha1.DataSubjectRequest {
	q := v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: store}, Type: typ,
			Dossier:    "b9d88858ee62d645d9e45651cc19a782f9314866fc6b8c190a1ec31ec2284149",
			ReceivedAt: metav1.NewTime(fixtureNow.Add(-14 * 24 * time.Hour)), Handler: "privacy-officer",
		},
		Status: v1alpha1.DataSubjectRequestStatus{DueDate: due, State: state},
	}
	if decided {
		q.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(fixtureNow.Add(-time.Hour))}
	}
	if state == v1alpha1.StateOverdue {
		q.Spec.Extension = &v1alpha1.DeadlineExtension{Months: 1, Reason: "complex request across three dossiers"}
	}
	return q
}
