package auditproxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// The reasons of a partner's denial.
const (
	// ReasonNoAgreementInForce: no agreement naming the caller is in force
	// at this instant (window, suspension, withdrawal, review).
	ReasonNoAgreementInForce DecisionReason = "no-agreement-in-force"
	// ReasonActionNotShared: partners only receive data (read, export);
	// they never change a dossier through an agreement.
	ReasonActionNotShared DecisionReason = "action-not-shared"
	// ReasonCategoriesNotShared: no agreement in force covers every
	// category of the route.
	ReasonCategoriesNotShared DecisionReason = "categories-not-shared"
	// ReasonConsentNotGiven: per-dossier consent is not given (none, ended,
	// not for these categories, or the route names no dossier).
	ReasonConsentNotGiven DecisionReason = "consent-not-given"
	// ReasonConsentWithdrawn: the consent source says consent was withdrawn.
	ReasonConsentWithdrawn DecisionReason = "consent-withdrawn"
	// ReasonConsentUnavailable: the consent source gave no answer in time,
	// or none is configured; the request is refused (fail closed).
	ReasonConsentUnavailable DecisionReason = "consent-unavailable"
)

// SharingDecision is the agreement side of a partner's decision.
type SharingDecision struct {
	// Agreement decided the request (allowed), or came closest (denied);
	// nil when no agreement names a caller's subject in force.
	Agreement *accesspolicy.Agreement
	// Consent is the outcome of the consent check.
	Consent auditlog.ConsentOutcome
	// ConsentErr is the consent source's error, when it failed.
	ConsentErr error
	// NoticeRequired: an allowed disclosure without consent, which the
	// client must be told about.
	NoticeRequired bool
}

// Event returns what the audit event records of the decision; partner is
// the partner of the agreements that name the caller.
func (s *SharingDecision) Event(partner string) *auditlog.Sharing {
	ev := &auditlog.Sharing{Partner: partner, Consent: s.Consent, NoticeRequired: s.NoticeRequired}
	if a := s.Agreement; a != nil {
		ev.Agreement, ev.Partner, ev.LegalBasis, ev.LegalReference = a.Name, a.Partner, string(a.LegalBasis), a.LegalReference
		ev.ConsentMode, ev.Purpose = string(a.ConsentMode), a.Purpose
	}
	if ev.Consent == "" {
		ev.Consent = auditlog.ConsentNotChecked
	}
	return ev
}

// PartnerAgreements returns the agreements with a subject naming the
// caller, in force or not. A caller named by one is a partner: its requests
// are decided from agreements only (AuthorisePartner), never from roles.
func (p *Policy) PartnerAgreements(id Identity) []*accesspolicy.Agreement {
	var out []*accesspolicy.Agreement
	for i := range p.Doc.Agreements {
		if partnerSubjectMatches(p.Doc.Agreements[i].Subjects, id) {
			out = append(out, &p.Doc.Agreements[i])
		}
	}
	return out
}

// AuthorisePartner decides a partner's request from the agreements naming
// the caller (PartnerAgreements), at the instant now:
//
//   - an agreement counts only when it is in force at now (InForceAt: the
//     window, suspension, withdrawal and review are checked per request,
//     so an expiry takes effect at once, also on a kept-alive connection);
//   - the route's action must be read or export, and every category of the
//     route must be among the agreement's (partners get exactly what one
//     agreement grants; agreements are not combined);
//   - an agreement with whole-agreement consent allows; one without consent
//     (LegalObligation, VitalInterest, PublicTask) allows without a look-up
//     and flags the disclosure for notice to the client; one with
//     per-dossier consent asks consents for the route's dossier, and allows
//     only on a definite "given" that covers the route's categories.
//
// Of the agreements that qualify, those with whole-agreement consent are
// tried first, then per-dossier consent, then the bases without consent,
// each by name; the first that allows decides. A denial reports the
// agreement that came closest.
func (p *Policy) AuthorisePartner(ctx context.Context, agreements []*accesspolicy.Agreement, m RouteMatch, now time.Time, consents ConsentChecker) Decision {
	return AuthoriseSharing(ctx, accesspolicy.Inbound, agreements, m, now, consents)
}

// AuthoriseSharing decides a request of flow under agreements at now, as
// AuthorisePartner describes: for Inbound a partner's request to the audit
// proxy, for Outbound a request the store's application sends to a
// partner through the egress gateway (agreements then holds the one
// agreement the application named). The agreements count only when in
// force for the flow (accesspolicy.Agreement.InForceFor); the rest of the
// decision is the same for both.
func AuthoriseSharing(ctx context.Context, flow accesspolicy.Flow, agreements []*accesspolicy.Agreement, m RouteMatch, now time.Time, consents ConsentChecker) Decision {
	route := m.Route
	// A denial is recorded under the first of the route's activities one
	// of the agreements serves (attemptedActivity).
	d := Decision{Sharing: &SharingDecision{Consent: auditlog.ConsentNotChecked}, Activity: attemptedActivity(route, agreements)}
	inForce, outOfForce := agreementsInForce(flow, agreements, now)
	if len(inForce) == 0 {
		d.Reason = ReasonNoAgreementInForce
		d.Detail = "no sharing agreement of yours is in force now: " + strings.Join(outOfForce, ", ")
		if flow == accesspolicy.Outbound {
			d.Detail = "the sharing agreement is not in force now: " + strings.Join(outOfForce, ", ")
		}
		if len(agreements) > 0 {
			d.Sharing.Agreement = agreements[0]
		}
		return d
	}
	if route.Action != v1alpha1.ActionRead && route.Action != v1alpha1.ActionExport {
		d.Reason, d.Sharing.Agreement = ReasonActionNotShared, inForce[0]
		d.Detail = fmt.Sprintf("route %q is a %s; a sharing agreement lets a partner receive data (read, export), never change it", route.Name, route.Action)
		return d
	}
	covering, closest, closestMissing := agreementsCovering(inForce, route.Categories)
	if len(covering) == 0 {
		d.Reason, d.Sharing.Agreement, d.Missing = ReasonCategoriesNotShared, closest, closestMissing
		d.Detail = fmt.Sprintf("no sharing agreement in force shares %s of route %q", strings.Join(closestMissing, ", "), route.Name)
		return d
	}
	if len(route.Activities) > 0 {
		serving := slices.DeleteFunc(slices.Clone(covering), func(a *accesspolicy.Agreement) bool { return agreementActivity(a, route) == "" })
		if len(serving) == 0 {
			d.Reason, d.Sharing.Agreement, d.MissingActivities = ReasonActivityNotServed, covering[0], slices.Clone(route.Activities)
			d.Detail = fmt.Sprintf("no sharing agreement in force serves processing activity %s of route %q: the data may be shared only for the purposes it was collected for",
				strings.Join(route.Activities, " or "), route.Name)
			return d
		}
		covering = serving
	}
	slices.SortStableFunc(covering, func(a, b *accesspolicy.Agreement) int {
		if ra, rb := agreementRank(a), agreementRank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Name, b.Name)
	})

	var denied *Decision
	for _, a := range covering {
		try := Decision{Sharing: &SharingDecision{Agreement: a}, Activity: agreementActivity(a, route)}
		switch {
		case a.LegalBasis != v1alpha1.BasisConsent:
			try.Allowed, try.Sharing.Consent, try.Sharing.NoticeRequired = true, auditlog.ConsentNotRequired, true
		case a.ConsentMode != v1alpha1.ConsentPerDossier:
			try.Allowed, try.Sharing.Consent = true, auditlog.ConsentAgreementCovers
		default:
			checkDossierConsent(ctx, &try, a, m, now, consents)
		}
		if try.Allowed {
			return try
		}
		if denied == nil {
			denied = &try
		}
	}
	return *denied
}

// agreementsInForce splits agreements into those in force for flow at now and the
// names (with the reason) of the others.
func agreementsInForce(flow accesspolicy.Flow, agreements []*accesspolicy.Agreement, now time.Time) (inForce []*accesspolicy.Agreement, outOfForce []string) {
	for _, a := range agreements {
		if ok, why := a.InForceFor(flow, now); ok {
			inForce = append(inForce, a)
		} else {
			outOfForce = append(outOfForce, fmt.Sprintf("%s (%s)", a.Name, why))
		}
	}
	return inForce, outOfForce
}

// agreementsCovering returns the agreements that share every category of
// need and, when there is none, the one missing the fewest with what it
// misses.
func agreementsCovering(agreements []*accesspolicy.Agreement, need []v1alpha1.DataCategory) (covering []*accesspolicy.Agreement, closest *accesspolicy.Agreement, closestMissing []string) {
	for _, a := range agreements {
		miss := missingCategories(need, a.Categories)
		if len(miss) == 0 {
			covering = append(covering, a)
		} else if closest == nil || len(miss) < len(closestMissing) {
			closest, closestMissing = a, miss
		}
	}
	return covering, closest, closestMissing
}

// checkDossierConsent asks the consent source for the route's dossier and
// fills in try.
func checkDossierConsent(ctx context.Context, try *Decision, a *accesspolicy.Agreement, m RouteMatch, now time.Time, consents ConsentChecker) {
	deny := func(reason DecisionReason, outcome auditlog.ConsentOutcome, detail string) {
		try.Reason, try.Sharing.Consent, try.Detail = reason, outcome, fmt.Sprintf("agreement %q: %s", a.Name, detail)
	}
	switch {
	case !m.HasDossier:
		deny(ReasonConsentNotGiven, auditlog.ConsentNotChecked, "consent is recorded per dossier, and this route names no dossier")
		return
	case consents == nil:
		try.Sharing.ConsentErr = ErrNoConsentSource
		deny(ReasonConsentUnavailable, auditlog.ConsentUnavailable, "consent is recorded per dossier, and no consent source is configured, so nothing is shared (fail closed)")
		return
	}
	ans, err := consents.Consent(ctx, ConsentQuery{Agreement: a.Name, Partner: a.Partner, Dossier: m.Dossier})
	switch {
	case err != nil:
		try.Sharing.ConsentErr = err
		deny(ReasonConsentUnavailable, auditlog.ConsentUnavailable, "the consent source could not confirm consent for this dossier, so nothing is shared (fail closed)")
	case ans.Withdrawn:
		deny(ReasonConsentWithdrawn, auditlog.ConsentWithdrawn, "consent for this dossier was withdrawn")
	case !ans.Given || (!ans.Until.IsZero() && !now.Before(ans.Until)):
		deny(ReasonConsentNotGiven, auditlog.ConsentNone, "there is no consent for this dossier")
	case ans.Categories != nil && len(missingCategories(m.Route.Categories, ans.Categories)) > 0:
		try.Missing = missingCategories(m.Route.Categories, ans.Categories)
		deny(ReasonConsentNotGiven, auditlog.ConsentNone, "the consent for this dossier does not cover "+strings.Join(try.Missing, ", "))
	default:
		try.Allowed, try.Sharing.Consent = true, auditlog.ConsentGiven
	}
}

// agreementRank orders the agreements tried: whole-agreement consent, then
// per-dossier consent, then the bases without consent (which need notice).
func agreementRank(a *accesspolicy.Agreement) int {
	switch {
	case a.LegalBasis == v1alpha1.BasisConsent && a.ConsentMode != v1alpha1.ConsentPerDossier:
		return 0
	case a.LegalBasis == v1alpha1.BasisConsent:
		return 1
	default:
		return 2
	}
}

// missingCategories lists the categories of need not in have, in need's order.
func missingCategories(need, have []v1alpha1.DataCategory) []string {
	var out []string
	for _, c := range need {
		if !slices.Contains(have, c) {
			out = append(out, string(c))
		}
	}
	return out
}

// partnerSubjectMatches reports whether one of subjects names the caller.
func partnerSubjectMatches(subjects []accesspolicy.PartnerSubject, id Identity) bool {
	return slices.ContainsFunc(subjects, func(s accesspolicy.PartnerSubject) bool {
		return subjectNames(string(s.Kind), s.Name, s.Namespace, id)
	})
}

// checkAgreements refuses agreements the proxy could not enforce exactly.
func checkAgreements(agreements []accesspolicy.Agreement) error {
	names := map[string]bool{}
	for i, a := range agreements {
		switch {
		case a.Name == "":
			return fmt.Errorf("access policy: agreements[%d] has no name", i)
		case names[a.Name]:
			return fmt.Errorf("access policy: agreement %q is listed twice", a.Name)
		case len(a.Categories) == 0:
			return fmt.Errorf("access policy: agreement %q lists no data categories", a.Name)
		}
		switch a.LegalBasis {
		case v1alpha1.BasisConsent:
			if a.ConsentMode != v1alpha1.ConsentAgreement && a.ConsentMode != v1alpha1.ConsentPerDossier {
				return fmt.Errorf("access policy: agreement %q: consent mode must be Agreement or PerDossier", a.Name)
			}
		case v1alpha1.BasisLegalObligation, v1alpha1.BasisVitalInterest, v1alpha1.BasisPublicTask:
		default:
			return fmt.Errorf("access policy: agreement %q: unknown legal basis", a.Name)
		}
		for _, s := range a.Subjects {
			switch s.Kind {
			case v1alpha1.PartnerSubjectUser, v1alpha1.PartnerSubjectGroup, v1alpha1.PartnerSubjectServiceAccount, v1alpha1.PartnerSubjectClient:
			default:
				return fmt.Errorf("access policy: agreement %q: subject kind must be User, Group, ServiceAccount or Client", a.Name)
			}
		}
		names[a.Name] = true
	}
	return nil
}

// attemptedActivity is the activity a partner's refused request on route is
// recorded under: the first of the route's activities one of the partner's
// agreements serves (the purpose it asked under), else the route's first
// (the register entry the processing would have fallen under); "" when the
// route names none.
func attemptedActivity(route *accesspolicy.Route, agreements []*accesspolicy.Agreement) string {
	if len(route.Activities) == 0 {
		return ""
	}
	for _, activity := range route.Activities {
		if slices.ContainsFunc(agreements, func(a *accesspolicy.Agreement) bool { return servesActivity(a.Activities, activity) }) {
			return activity
		}
	}
	return route.Activities[0]
}

// agreementActivity is the first of the route's activities the agreement
// may share under: "" when the route names none, or when it names some and
// the agreement serves none of them. An agreement naming no activity
// serves every one (it predates processing activities).
func agreementActivity(a *accesspolicy.Agreement, route *accesspolicy.Route) string {
	for _, activity := range route.Activities {
		if servesActivity(a.Activities, activity) {
			return activity
		}
	}
	return ""
}
