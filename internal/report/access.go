package report

import (
	"cmp"
	"io"
	"slices"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// AccessInput is what a family's access report (AVG art. 15) is built
// from: the Access request, the store that holds the dossier with its
// access roles and retention policies, and the dossier's events from the
// audit trail (as `dossierguard audit query` reads them), already
// selected by the dossier's pseudonym.
type AccessInput struct {
	Request  v1alpha1.DataSubjectRequest
	Store    v1alpha1.DossierStore
	Roles    []v1alpha1.AccessRole
	Policies []v1alpha1.RetentionPolicy
	Events   []auditlog.Event
}

// AccessReport is the family's access report. It names no member of staff:
// an access is shown by the roles it was made under and the organisation
// that made it (the store's, or the partner's for a disclosure), never by
// the account that made it. It holds no dossier identifier, not even its
// pseudonym, and no free text from the audit trail (such as a
// break-glass reason).
type AccessReport struct {
	Meta         Meta
	Request      string
	ReceivedAt   time.Time
	DueDate      string
	Relation     string
	Organisation string
	Service      string
	Categories   []string
	// Accesses are the processings that were allowed, oldest first.
	Accesses []AccessRow
	// Refused counts attempts that were refused (nothing was shown).
	Refused   int
	Retention []AccessRetention
}

// AccessRow is one processing of the dossier.
type AccessRow struct {
	Time time.Time
	// Roles the access was made under (staff), or the sharing agreement
	// (a partner).
	Roles        []string
	Organisation string
	// Disclosure is true when the data went to a partner organisation.
	Disclosure bool
	Action     string
	Categories []string
	// Purpose is the purpose of the role (staff) or of the agreement.
	Purpose string
	// Basis is the legal basis of a disclosure (LegalReference its
	// article); empty for staff, whose basis is the organisation's task.
	Basis          string
	LegalReference string
	BreakGlass     bool
}

// AccessRetention is one retention rule that applies to the dossier.
type AccessRetention struct {
	Policy string
	RetentionRule
}

// BuildAccess turns the input into the access report. It is pure: the same
// input and meta give the same report.
func BuildAccess(in AccessInput, meta Meta) AccessReport {
	r := AccessReport{
		Meta:         meta,
		Request:      in.Request.Name,
		ReceivedAt:   in.Request.Spec.ReceivedAt.UTC(),
		DueDate:      in.Request.Status.DueDate,
		Relation:     string(in.Request.Spec.Requester.Relation),
		Organisation: in.Store.Spec.Organisation,
		Service:      string(in.Store.Spec.Service),
		Categories:   strs(in.Store.Spec.DataCategories),
	}
	purposes := map[string]string{}
	for _, role := range in.Roles {
		if role.Spec.StoreRef.Name == in.Store.Name {
			purposes[role.Name] = role.Spec.Purpose
		}
	}
	for _, ev := range in.Events {
		if ev.Outcome != auditlog.OutcomeAllowed {
			// An aggregate stands for Count refused requests.
			r.Refused += max(ev.Count, 1)
			continue
		}
		row := AccessRow{
			Organisation: in.Store.Spec.Organisation,
			Action:       string(ev.Action),
			Time:         ev.Time.UTC(),
			Categories:   slices.Clone(ev.Categories),
			BreakGlass:   ev.BreakGlass,
		}
		if sh := ev.Sharing; sh != nil {
			row.Disclosure = true
			row.Organisation = sh.Partner
			row.Roles = []string{sh.Agreement}
			row.Purpose = sh.Purpose
			row.Basis = sh.LegalBasis
			row.LegalReference = sh.LegalReference
		} else {
			row.Roles = slices.Clone(ev.Roles)
			slices.Sort(row.Roles)
			for _, role := range row.Roles {
				if p := purposes[role]; p != "" && row.Purpose == "" {
					row.Purpose = p
				}
			}
		}
		r.Accesses = append(r.Accesses, row)
	}
	slices.SortStableFunc(r.Accesses, func(a, b AccessRow) int { return a.Time.Compare(b.Time) })
	for i := range in.Policies {
		p := &in.Policies[i]
		if p.Spec.StoreRef.Name != in.Store.Name {
			continue
		}
		for _, rule := range newRetention(p).Rules {
			r.Retention = append(r.Retention, AccessRetention{Policy: p.Name, RetentionRule: rule})
		}
	}
	slices.SortStableFunc(r.Retention, func(a, b AccessRetention) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Name, b.Name))
	})
	return r
}

var accessTemplate = must(ParseTemplate("access.html"))

// RenderAccess writes the access report as one HTML document, in the
// language of its Meta.
func RenderAccess(w io.Writer, r AccessReport) error {
	return accessTemplate.Execute(w, Page{Title: "access.title", Meta: r.Meta, Body: r})
}
