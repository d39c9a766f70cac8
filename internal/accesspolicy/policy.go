// Package accesspolicy defines the access-policy document that the
// DossierStore reconciler renders from a store's AccessRoles and
// SharingAgreements and the audit proxy enforces: who (users, groups,
// service accounts) may do what (read, write, export) with which data
// categories, for which purpose; which partners (by the subjects their
// requests carry) may receive which categories, on which legal basis and
// within which window; and which application routes touch which categories.
//
// The document is canonical: every list is sorted and the JSON encoding is
// deterministic, so the same roles give the same bytes and the same hash
// whatever order they were created in.
package accesspolicy

import (
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

// Version is the newest document format this build reads and writes.
// Build writes the oldest version that holds everything the document says,
// so that a proxy of an older release keeps reading the documents it can
// enforce and refuses (fail closed) those it cannot: version 1, or
// VersionRecords when a route declares records (an older proxy would pass
// such a route's responses through unfiltered).
const Version = VersionRecords

const (
	// VersionInitial is the first document format.
	VersionInitial = 1
	// VersionRecords adds routes' records (Route.Records).
	VersionRecords = 2
)

// ConfigMapKey is the key of the document in its ConfigMap.
const ConfigMapKey = "policy.json"

// Document is the access policy of one store.
type Document struct {
	Version            int     `json:"version"`
	Store              string  `json:"store"`
	Namespace          string  `json:"namespace"`
	ProcessingActivity string  `json:"processingActivity,omitempty"`
	Routes             []Route `json:"routes"`
	Roles              []Role  `json:"roles"`
	// Agreements are every SharingAgreement of the store, in force or not:
	// the proxy decides per request whether one is in force at that instant.
	Agreements []Agreement `json:"agreements"`
	// ActivityIDs maps the name of each ProcessingActivity a route, role
	// or agreement names to what audit events record for it
	// (dpl.core.processing_activity_id); a name missing here is recorded as
	// itself.
	ActivityIDs map[string]string `json:"activityIDs,omitempty"`
}

// ActivityID is what an event records for a request allowed under the
// named activity; for "" (a route or role that names none) the store's
// ProcessingActivity, as before activities existed.
func (d *Document) ActivityID(name string) string {
	return activityID(d.ActivityIDs, d.ProcessingActivity, name)
}

// activityID is the ID ids give the named activity: def for "", the name
// itself when ids has none.
func activityID(ids map[string]string, def, name string) string {
	if name == "" {
		return def
	}
	if id, ok := ids[name]; ok && id != "" {
		return id
	}
	return name
}

// Route maps a request to the categories it touches and the action it is.
type Route struct {
	Name       string                  `json:"name"`
	Method     string                  `json:"method"`
	Path       string                  `json:"path"`
	Categories []v1alpha1.DataCategory `json:"categories"`
	Action     v1alpha1.Action         `json:"action"`
	// AllowWebSocket lets the route's requests upgrade to a WebSocket.
	AllowWebSocket bool `json:"allowWebSocket,omitempty"`
	// Activities are the processing activities the route serves, sorted;
	// a request is allowed only under one the caller's role (or agreement)
	// serves too. Empty: the route is decided by categories only.
	Activities []string `json:"activities,omitempty"`
	// Records, on a route without {dossier}, says how its response names
	// the dossier of each item; the proxy leaves out the items of dossiers
	// a restriction or objection in force reaches.
	Records *Records `json:"records,omitempty"`
}

// Records is how a route's JSON response names its items' dossiers.
type Records struct {
	Format v1alpha1.RecordsFormat `json:"format"`
	// Items is the JSON Pointer to the array of items, "" for a top-level
	// array.
	Items string `json:"items"`
	// DossierField is the JSON Pointer within an item to its dossier id.
	DossierField string `json:"dossierField"`
	// MaxBodyBytes bounds the response the proxy reads, after
	// decompression.
	MaxBodyBytes int64 `json:"maxBodyBytes"`
}

// recordsEntry is the document's form of a route's records, defaulted.
func recordsEntry(rs *v1alpha1.RecordsSpec) *Records {
	if rs == nil {
		return nil
	}
	r := &Records{Format: rs.Format, Items: rs.Items, DossierField: rs.DossierField, MaxBodyBytes: rs.MaxBodyBytes}
	if r.Format == "" {
		r.Format = v1alpha1.RecordsJSON
	}
	if r.MaxBodyBytes <= 0 {
		r.MaxBodyBytes = v1alpha1.DefaultRecordsMaxBodyBytes
	}
	r.MaxBodyBytes = min(r.MaxBodyBytes, v1alpha1.MaxRecordsMaxBodyBytes)
	return r
}

// Role grants categories and actions to subjects.
type Role struct {
	Name              string                  `json:"name"`
	Purpose           string                  `json:"purpose"`
	Subjects          []Subject               `json:"subjects"`
	Categories        []v1alpha1.DataCategory `json:"categories"`
	Actions           []v1alpha1.Action       `json:"actions"`
	AssignedCasesOnly bool                    `json:"assignedCasesOnly"`
	BreakGlass        bool                    `json:"breakGlass"`
	// Activities the role serves, sorted; empty: every activity of a route
	// (the role predates processing activities).
	Activities []string `json:"activities,omitempty"`
}

// Subject is a user, group or service account.
type Subject struct {
	Kind      v1alpha1.SubjectKind `json:"kind"`
	Name      string               `json:"name"`
	Namespace string               `json:"namespace,omitempty"`
}

// Agreement is a SharingAgreement as the proxy enforces it. The proxy
// recognises the partner by Subjects and decides each request from the
// window, suspension and withdrawal at that instant (see InForceAt).
type Agreement struct {
	Name        string               `json:"name"`
	Partner     string               `json:"partner"`
	PartnerType v1alpha1.PartnerType `json:"partnerType"`
	Direction   v1alpha1.Direction   `json:"direction"`
	Subjects    []PartnerSubject     `json:"subjects"`
	// Categories the partner may receive, in vocabulary order.
	Categories     []v1alpha1.DataCategory `json:"categories"`
	Purpose        string                  `json:"purpose"`
	LegalBasis     v1alpha1.LegalBasis     `json:"legalBasis"`
	LegalReference string                  `json:"legalReference,omitempty"`
	// ValidFrom and ValidUntil are the window [from, until); nil is open.
	ValidFrom  *time.Time `json:"validFrom,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	// ReviewBy ends a VitalInterest agreement until its review is renewed.
	ReviewBy  *time.Time `json:"reviewBy,omitempty"`
	Suspended bool       `json:"suspended"`
	// Withdrawn and WithdrawnAt are the whole agreement's consent withdrawal.
	Withdrawn   bool       `json:"withdrawn"`
	WithdrawnAt *time.Time `json:"withdrawnAt,omitempty"`
	// ConsentMode is Agreement or PerDossier for a Consent basis, else empty.
	ConsentMode      v1alpha1.ConsentMode `json:"consentMode,omitempty"`
	ConsentReference string               `json:"consentReference,omitempty"`
	// Refused is why the operator refuses the agreement whatever the time
	// (such as MinimisationViolated); the proxy then admits nothing under it.
	Refused string `json:"refused,omitempty"`
	// Activities the sharing serves, sorted; empty: every activity of a
	// route (the agreement predates processing activities).
	Activities []string `json:"activities,omitempty"`
}

// PartnerSubject is an identity a partner's requests carry.
type PartnerSubject struct {
	Kind      v1alpha1.PartnerSubjectKind `json:"kind"`
	Name      string                      `json:"name"`
	Namespace string                      `json:"namespace,omitempty"`
}

// Why an agreement is not in force at an instant (InForceAt, InForceFor).
const (
	NotInForceRefused          = "refused"
	NotInForceEgressOnly       = "egress-only"
	NotInForceIngressOnly      = "ingress-only"
	NotInForceSuspended        = "suspended"
	NotInForceConsentWithdrawn = "consent-withdrawn"
	NotInForceNotYetValid      = "not-yet-valid"
	NotInForceExpired          = "expired"
	NotInForceReviewOverdue    = "review-overdue"
)

// Flow is which way a request under an agreement goes: Inbound, the
// partner calls the store's audit proxy; Outbound, the store's application
// sends to the partner through the egress gateway.
type Flow uint8

// The flows.
const (
	Inbound Flow = iota
	Outbound
)

// InForceAt reports whether the agreement admits the partner to the proxy
// at t, and if not, why (one of the NotInForce reasons). It is what the
// proxy checks for every request, so that an expiry or a withdrawal takes
// effect at that instant.
func (a *Agreement) InForceAt(t time.Time) (bool, string) { return a.InForceFor(Inbound, t) }

// InForceFor reports whether the agreement allows requests of flow at t,
// and if not, why: the direction must allow the flow (Ingress or Both for
// Inbound, Egress or Both for Outbound); everything else is what InForceAt
// checks, the same for both flows.
func (a *Agreement) InForceFor(flow Flow, t time.Time) (bool, string) {
	if a.Refused != "" {
		return false, NotInForceRefused
	}
	if why := a.directionRefuses(flow); why != "" {
		return false, why
	}
	switch {
	case a.Withdrawn || (a.WithdrawnAt != nil && !t.Before(*a.WithdrawnAt)):
		return false, NotInForceConsentWithdrawn
	case a.ReviewBy != nil && !t.Before(*a.ReviewBy):
		return false, NotInForceReviewOverdue
	case a.Suspended:
		return false, NotInForceSuspended
	case a.ValidFrom != nil && t.Before(*a.ValidFrom):
		return false, NotInForceNotYetValid
	case a.ValidUntil != nil && !t.Before(*a.ValidUntil):
		return false, NotInForceExpired
	}
	return true, ""
}

// directionRefuses is why the agreement's direction does not allow flow,
// "" when it does.
func (a *Agreement) directionRefuses(flow Flow) string {
	switch {
	case a.Direction == v1alpha1.DirectionBoth:
		return ""
	case flow == Inbound && a.Direction != v1alpha1.DirectionIngress:
		return NotInForceEgressOnly
	case flow == Outbound && a.Direction != v1alpha1.DirectionEgress:
		return NotInForceIngressOnly
	}
	return ""
}

// AgreementEntry turns a SharingAgreement into its document entry. refused
// is the reason the operator refuses it whatever the time, or "".
func AgreementEntry(a *v1alpha1.SharingAgreement, refused string) Agreement {
	spec := &a.Spec
	direction := spec.Direction
	if direction == "" {
		direction = v1alpha1.DirectionEgress
	}
	e := Agreement{
		Name:           a.Name,
		Partner:        spec.Partner.Name,
		PartnerType:    spec.Partner.Type,
		Direction:      direction,
		Subjects:       make([]PartnerSubject, 0, len(spec.Partner.Subjects)),
		Categories:     canonicalCategories(spec.Categories),
		Purpose:        spec.Purpose,
		LegalBasis:     spec.LegalBasis,
		LegalReference: spec.LegalReference,
		ValidFrom:      utc(spec.ValidFrom),
		ValidUntil:     utc(spec.ValidUntil),
		Suspended:      spec.Suspended,
		Refused:        refused,
		Activities:     activityNames(spec.ProcessingActivities),
	}
	if spec.LegalBasis == v1alpha1.BasisVitalInterest {
		e.ReviewBy = utc(spec.ReviewDate)
		if e.ReviewBy == nil {
			e.Refused = "ReviewDateMissing"
		}
	}
	if c := spec.Consent; c != nil && spec.LegalBasis == v1alpha1.BasisConsent {
		e.ConsentMode, e.ConsentReference = c.EffectiveMode(), c.Reference
		e.Withdrawn, e.WithdrawnAt = c.Withdrawn, utc(c.WithdrawnAt)
	}
	for _, s := range spec.Partner.Subjects {
		e.Subjects = append(e.Subjects, PartnerSubject{Kind: s.Kind, Name: s.Name, Namespace: s.Namespace})
	}
	sortSubjects(e.Subjects, func(s PartnerSubject) [3]string { return [3]string{string(s.Kind), s.Namespace, s.Name} })
	return e
}

// sortSubjects orders subjects by kind, namespace and name, as key gives
// them.
func sortSubjects[S any](subjects []S, key func(S) [3]string) {
	slices.SortFunc(subjects, func(a, b S) int {
		ka, kb := key(a), key(b)
		for i := range ka {
			if c := strings.Compare(ka[i], kb[i]); c != 0 {
				return c
			}
		}
		return 0
	})
}

func utc(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Build assembles the canonical document of a store from the roles that may
// be enforced (the caller leaves out roles that failed their checks) and
// the entries of every agreement of the store (see AgreementEntry).
func Build(store *v1alpha1.DossierStore, roles []v1alpha1.AccessRole, agreements []Agreement) Document {
	doc := Document{
		Version:    VersionInitial,
		Store:      store.Name,
		Namespace:  store.Namespace,
		Routes:     []Route{},
		Roles:      make([]Role, 0, len(roles)),
		Agreements: append(make([]Agreement, 0, len(agreements)), agreements...),
	}
	sort.Slice(doc.Agreements, func(i, j int) bool { return doc.Agreements[i].Name < doc.Agreements[j].Name })
	if a := store.Spec.Audit; a != nil {
		doc.ProcessingActivity = a.ProcessingActivity
		for _, r := range a.Routes {
			doc.Routes = append(doc.Routes, Route{
				Name: r.Name, Method: r.Method, Path: r.Path, Categories: canonicalCategories(r.Categories), Action: r.Action,
				AllowWebSocket: r.AllowWebSocket, Activities: activityNames(r.ProcessingActivities), Records: recordsEntry(r.Records),
			})
		}
	}
	sort.Slice(doc.Routes, func(i, j int) bool { return doc.Routes[i].Name < doc.Routes[j].Name })
	if slices.ContainsFunc(doc.Routes, func(r Route) bool { return r.Records != nil }) {
		doc.Version = VersionRecords
	}
	for _, r := range roles {
		role := Role{
			Name:              r.Name,
			Purpose:           r.Spec.Purpose,
			Categories:        canonicalCategories(r.Spec.Categories),
			Actions:           slices.Sorted(slices.Values(r.Spec.Actions)),
			AssignedCasesOnly: r.Spec.AssignedCasesOnly,
			BreakGlass:        r.Spec.BreakGlass != nil,
			Activities:        activityNames(r.Spec.ProcessingActivities),
		}
		for _, s := range r.Spec.Subjects {
			role.Subjects = append(role.Subjects, Subject{Kind: s.Kind, Name: s.Name, Namespace: s.Namespace})
		}
		sortSubjects(role.Subjects, func(s Subject) [3]string { return [3]string{string(s.Kind), s.Namespace, s.Name} })
		doc.Roles = append(doc.Roles, role)
	}
	sort.Slice(doc.Roles, func(i, j int) bool { return doc.Roles[i].Name < doc.Roles[j].Name })
	return doc
}

// activityNames returns the names sorted, nil when there are none.
func activityNames(in []v1alpha1.ActivityName) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, n := range in {
		out[i] = string(n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SetActivityIDs records, for every activity the document's routes, roles
// and agreements name, the ID its events carry (ProcessingActivity.ID). A
// named activity that does not exist is left out, and so recorded by name.
func SetActivityIDs(doc *Document, activities []v1alpha1.ProcessingActivity) {
	named := map[string]bool{}
	for _, r := range doc.Routes {
		for _, a := range r.Activities {
			named[a] = true
		}
	}
	for _, r := range doc.Roles {
		for _, a := range r.Activities {
			named[a] = true
		}
	}
	for _, g := range doc.Agreements {
		for _, a := range g.Activities {
			named[a] = true
		}
	}
	if ids := activityIDs(named, activities); ids != nil {
		if doc.ActivityIDs == nil {
			doc.ActivityIDs = map[string]string{}
		}
		for k, v := range ids {
			doc.ActivityIDs[k] = v
		}
	}
}

// activityIDs maps each of activities that is named to its ID; nil when
// none is.
func activityIDs(named map[string]bool, activities []v1alpha1.ProcessingActivity) map[string]string {
	var ids map[string]string
	for i := range activities {
		if a := &activities[i]; named[a.Name] {
			if ids == nil {
				ids = map[string]string{}
			}
			ids[a.Name] = a.ID()
		}
	}
	return ids
}

// canonicalCategories orders categories as the vocabulary does.
func canonicalCategories(in []v1alpha1.DataCategory) []v1alpha1.DataCategory {
	out := make([]v1alpha1.DataCategory, 0, len(in))
	for _, c := range v1alpha1.AllDataCategories {
		if slices.Contains(in, c) {
			out = append(out, c)
		}
	}
	return out
}

// Format is the access-policy document's format: the versions this build
// reads, from VersionInitial to Version.
var Format = policyfile.Format{Name: "access policy", MinVersion: VersionInitial, MaxVersion: Version}

// Encode returns the document's canonical bytes and their SHA-256 in hex.
func Encode(doc Document) ([]byte, string, error) { return Format.Encode(doc) }

// Decode parses a document, refusing an unknown version.
func Decode(data []byte) (Document, error) {
	var doc Document
	if err := Format.Decode(data, &doc); err != nil {
		return Document{}, err
	}
	return doc, nil
}
