package compliance

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlLawfulBasis] = "AVG art. 6(1), art. 9(2); BIO 5.34"
	References[v1alpha1.ControlDataMinimisation] = "AVG art. 5(1)(c)"
	References[v1alpha1.ControlTransferControl] = "AVG art. 5(1)(f); BIO 5.14, 8.22"
}

var (
	allCategories = v1alpha1.AllDataCategories
	// contentCategories say what the help is about; billing never sees them.
	contentCategories = []v1alpha1.DataCategory{
		v1alpha1.CategoryRequest, v1alpha1.CategoryPlan, v1alpha1.CategoryReports,
		v1alpha1.CategoryHealth, v1alpha1.CategorySafety, v1alpha1.CategoryFamily,
	}
)

func except(remove ...v1alpha1.DataCategory) []v1alpha1.DataCategory {
	var out []v1alpha1.DataCategory
	for _, c := range allCategories {
		if !slices.Contains(remove, c) {
			out = append(out, c)
		}
	}
	return out
}

func only(keep ...v1alpha1.DataCategory) []v1alpha1.DataCategory { return keep }

// PartnerMaxima is the most each type of partner may ever receive, from the
// privacy statements ("nooit méér gegevens dan nodig"). docs/sharing.md
// explains each row.
var PartnerMaxima = map[v1alpha1.PartnerType][]v1alpha1.DataCategory{
	// Verwijsindex: only that there is help, and how to reach the professional.
	v1alpha1.PartnerReferralIndex: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact),
	// Billing by the municipality: who, which decision, what it cost; no content.
	v1alpha1.PartnerMunicipalityBilling: except(contentCategories...),
	// School: coordinating support, never health, safety reports or finances.
	v1alpha1.PartnerSchool: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryRequest, v1alpha1.CategoryPlan),
	// GP: care coordination, no finances or safety investigations.
	v1alpha1.PartnerGeneralPractitioner: except(v1alpha1.CategoryFinance, v1alpha1.CategorySafety, v1alpha1.CategoryDecisions),
	// Housing corporation: preventing eviction, no health or safety data.
	v1alpha1.PartnerHousingCorporation: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryRequest, v1alpha1.CategoryFinance),
	// Care provider taking over or sharing the help.
	v1alpha1.PartnerCareProvider: except(v1alpha1.CategoryFinance),
	// Veilig Thuis, certified institutions and the Raad voor de
	// Kinderbescherming have statutory tasks that may need the whole dossier.
	v1alpha1.PartnerVeiligThuis:               allCategories,
	v1alpha1.PartnerCertifiedInstitution:      allCategories,
	v1alpha1.PartnerCouncilForChildProtection: allCategories,
	// Police: acute safety only.
	v1alpha1.PartnerPolice: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategorySafety),
	// Quality oversight judges the help given, never the family's money or
	// their citizen service number. A complaints committee and the
	// Ombudsman judge a complaint: the request, the plan, the reports and
	// the decisions it is about.
	v1alpha1.PartnerComplaintsCommittee: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryRequest,
		v1alpha1.CategoryPlan, v1alpha1.CategoryReports, v1alpha1.CategoryDecisions),
	v1alpha1.PartnerOmbudsman: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryRequest,
		v1alpha1.CategoryPlan, v1alpha1.CategoryReports, v1alpha1.CategoryDecisions),
	// A disciplinary board judges a registered professional's conduct,
	// which can include health and safety assessments, not how to reach the
	// family.
	v1alpha1.PartnerDisciplinaryBoard: except(v1alpha1.CategoryBSN, v1alpha1.CategoryContact, v1alpha1.CategoryFinance),
	// The Inspectorate investigating a calamity may need the whole course of
	// the help, but not the finances.
	v1alpha1.PartnerInspectorate: except(v1alpha1.CategoryBSN, v1alpha1.CategoryFinance),
	// Any other partner: the least, until a type fits.
	v1alpha1.PartnerOther: only(v1alpha1.CategoryIdentity, v1alpha1.CategoryContact),
}

// AgreementVerdict is whether an agreement is in force now, and why.
type AgreementVerdict struct {
	InForce bool
	Reason  string
	Message string
	// NextTransition is the next moment the verdict may change by itself.
	NextTransition time.Time
	// NotifyClient is set when data is shared without consent.
	NotifyClient bool
	Controls     []v1alpha1.ComplianceControl
}

// StoreView is what the agreement check needs of its store.
type StoreView struct {
	Found      bool
	Ready      bool
	Categories []v1alpha1.DataCategory
}

// EvaluateAgreement decides, failing closed, whether an agreement is in
// force at now. The checks run in order; the first that fails decides.
func EvaluateAgreement(a *v1alpha1.SharingAgreement, store StoreView, now time.Time) AgreementVerdict {
	spec := &a.Spec
	v := AgreementVerdict{NotifyClient: spec.LegalBasis != v1alpha1.BasisConsent, NextTransition: nextBoundary(spec, now)}
	basis := lawfulBasisControl(spec, now)
	minimisation := minimisationControl(spec, store)
	v.Controls = []v1alpha1.ComplianceControl{basis, minimisation}

	switch {
	case !store.Found:
		v.Reason, v.Message = v1alpha1.ReasonStoreNotFound, fmt.Sprintf("DossierStore %q does not exist", spec.StoreRef.Name)
	case minimisation.Result != v1alpha1.ResultPass:
		v.Reason, v.Message = v1alpha1.ReasonMinimisationViolated, minimisation.Message
	case spec.Consent != nil && spec.Consent.WithdrawnBy(now):
		v.Reason, v.Message = v1alpha1.ReasonConsentWithdrawn, fmt.Sprintf("consent %s was withdrawn; sharing stopped", consentName(spec.Consent))
	case basis.Result != v1alpha1.ResultPass:
		v.Reason, v.Message = basis.Reason, basis.Message
	case spec.Suspended:
		v.Reason, v.Message = v1alpha1.ReasonSuspended, "the agreement is suspended"
	case spec.ValidFrom != nil && now.Before(spec.ValidFrom.Time):
		v.Reason, v.Message = v1alpha1.ReasonNotYetValid, "the agreement takes effect at "+stamp(spec.ValidFrom.Time)
	case spec.ValidUntil != nil && !now.Before(spec.ValidUntil.Time):
		v.Reason, v.Message = v1alpha1.ReasonExpired, "the agreement expired at "+stamp(spec.ValidUntil.Time)
	case !store.Ready:
		v.Reason, v.Message = v1alpha1.ReasonStoreNotReady, fmt.Sprintf("DossierStore %q is not Ready; nothing is shared from a store that is not secured", spec.StoreRef.Name)
	default:
		v.InForce, v.Reason = true, v1alpha1.ReasonInForce
		v.Message = fmt.Sprintf("sharing %s with %s on the basis of %s", joinCategories(spec.Categories), spec.Partner.Name, spec.LegalBasis)
		if spec.ValidUntil != nil {
			v.Message += " until " + stamp(spec.ValidUntil.Time)
		}
	}
	return v
}

// TransferControl passes when network access exists exactly while in force.
func TransferControl(inForce, policyExists bool, policy string) v1alpha1.ComplianceControl {
	if inForce != policyExists {
		return control(v1alpha1.ControlTransferControl, v1alpha1.ResultFail, v1alpha1.ReasonNetworkAccessMismatch,
			"network access to the partner does not match the agreement's state; see the operator's events")
	}
	if inForce {
		return control(v1alpha1.ControlTransferControl, v1alpha1.ResultPass, v1alpha1.ReasonAccessWhileInForce,
			"network access to the partner exists while the agreement is in force", "NetworkPolicy/"+policy)
	}
	return control(v1alpha1.ControlTransferControl, v1alpha1.ResultPass, v1alpha1.ReasonNoAccessOutOfForce,
		"no network access to the partner while the agreement is not in force")
}

func lawfulBasisControl(spec *v1alpha1.SharingAgreementSpec, now time.Time) v1alpha1.ComplianceControl {
	switch spec.LegalBasis {
	case v1alpha1.BasisConsent:
		if spec.Consent == nil {
			return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultFail, v1alpha1.ReasonConsentMissing, "no consent is recorded")
		}
		if spec.Consent.WithdrawnBy(now) {
			return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultPass, v1alpha1.ReasonConsentWithdrawn,
				"consent was withdrawn and sharing stopped", consentName(spec.Consent)+" (withdrawn)")
		}
		if spec.Consent.EffectiveMode() == v1alpha1.ConsentPerDossier {
			return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultPass, v1alpha1.ReasonBasisDocumented,
				"consent of the client (AVG art. 6(1)(a)), recorded per dossier and asked of the consent source before every disclosure",
				consentName(spec.Consent))
		}
		return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultPass, v1alpha1.ReasonBasisDocumented,
			"consent of the client (AVG art. 6(1)(a))", consentName(spec.Consent))
	case v1alpha1.BasisVitalInterest:
		if spec.ReviewDate == nil || !now.Before(spec.ReviewDate.Time) {
			return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultFail, v1alpha1.ReasonReviewOverdue,
				"sharing without consent for a vital interest was due for review; it stops until the review date is renewed")
		}
		return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultPass, v1alpha1.ReasonBasisDocumented,
			"vital interest (AVG art. 6(1)(d), Meldcode) with a justification, review by "+stamp(spec.ReviewDate.Time),
			"justification recorded", "review "+stamp(spec.ReviewDate.Time))
	default:
		return control(v1alpha1.ControlLawfulBasis, v1alpha1.ResultPass, v1alpha1.ReasonBasisDocumented,
			fmt.Sprintf("%s under %s", spec.LegalBasis, spec.LegalReference), spec.LegalReference)
	}
}

func minimisationControl(spec *v1alpha1.SharingAgreementSpec, store StoreView) v1alpha1.ComplianceControl {
	var problems []string
	if store.Found {
		if extra := missing(spec.Categories, store.Categories); len(extra) > 0 {
			problems = append(problems, fmt.Sprintf("categories %s are not held by the store", joinCategories(extra)))
		}
	}
	maximum := PartnerMaxima[spec.Partner.Type]
	if extra := missing(spec.Categories, maximum); len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("a %s may receive at most %s, not %s",
			spec.Partner.Type, joinCategories(maximum), joinCategories(extra)))
	}
	if len(problems) > 0 {
		return control(v1alpha1.ControlDataMinimisation, v1alpha1.ResultFail, v1alpha1.ReasonMinimisationViolated, strings.Join(problems, "; "))
	}
	return control(v1alpha1.ControlDataMinimisation, v1alpha1.ResultPass, v1alpha1.ReasonWithinMaximum,
		fmt.Sprintf("%s within the maximum for a %s", joinCategories(spec.Categories), spec.Partner.Type))
}

// consentName names the consent in messages and evidence: its record
// reference, or the consent source for per-dossier consent.
func consentName(c *v1alpha1.Consent) string {
	if c.Reference != "" {
		return "consent " + c.Reference
	}
	return "per-dossier consent"
}

// nextBoundary is the earliest future moment among the window's ends, the
// review date and a scheduled withdrawal.
func nextBoundary(spec *v1alpha1.SharingAgreementSpec, now time.Time) time.Time {
	var next time.Time
	var withdrawnAt *metav1.Time
	if spec.Consent != nil {
		withdrawnAt = spec.Consent.WithdrawnAt
	}
	for _, t := range []*metav1.Time{spec.ValidFrom, spec.ValidUntil, spec.ReviewDate, withdrawnAt} {
		if t != nil && t.After(now) && (next.IsZero() || t.Time.Before(next)) {
			next = t.Time
		}
	}
	return next
}

func missing(want, have []v1alpha1.DataCategory) []v1alpha1.DataCategory {
	var out []v1alpha1.DataCategory
	for _, c := range want {
		if !slices.Contains(have, c) {
			out = append(out, c)
		}
	}
	return out
}

func joinCategories(cs []v1alpha1.DataCategory) string {
	parts := make([]string, 0, len(cs))
	for _, c := range allCategories {
		if slices.Contains(cs, c) {
			parts = append(parts, string(c))
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
