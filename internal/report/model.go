// Package report renders the HTML reports dossierguard writes for people:
// the auditor's compliance report (`dossierguard report`) and, sharing its
// layout, print stylesheet and language strings, further reports such as a
// family's access report.
//
// A report is built in two steps. The model is pure: Build turns the
// dossierguard resources and their status (an Input, read from the API by
// List) into a Compliance value, one Store per DossierStore with its
// controls, roles, agreements and retention policies. Render then writes
// it as one self-contained HTML document (no scripts, no external
// resources) from the templates embedded in this package, in Dutch or
// English, printable to PDF from any browser.
//
// The model holds only what the API holds and an auditor needs: names of
// objects, settings, results, references and the evidence of each control
// as the operator reports it in status. It leaves out what may identify a
// person: users named as subjects of a role are counted, never listed. It
// never reads labels, annotations or the database credentials of a
// retention policy.
//
// Adding a kind of resource (as DataSubjectRequest was) to the report is a
// small change: a field in Input and a List call, a row type built in
// Build, a section template in templates/compliance.html and its strings in
// lang/*.json.
package report

import (
	"cmp"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// Input is what a report is built from: the dossierguard resources of one
// namespace or of all of them, with their status.
type Input struct {
	Stores     []v1alpha1.DossierStore
	Roles      []v1alpha1.AccessRole
	Agreements []v1alpha1.SharingAgreement
	Policies   []v1alpha1.RetentionPolicy
	// Requests are the DataSubjectRequests; the report shows the open ones
	// (not decided yet) with their deadlines.
	Requests []v1alpha1.DataSubjectRequest
}

// Meta says when, by whom, from which cluster and over which namespaces a
// report was produced. Every report carries it.
type Meta struct {
	Lang        Lang
	GeneratedAt time.Time
	// GeneratedBy is the user name the API server authenticated (from a
	// SelfSubjectReview).
	GeneratedBy string
	// Cluster is the kubeconfig's name of the cluster, Server its API
	// server's URL.
	Cluster string
	Server  string
	// Namespace is the namespace reported on; empty for all namespaces.
	Namespace string
	// Version is dossierguard's version that produced the report.
	Version string
}

// Compliance is the auditor's compliance report.
type Compliance struct {
	Meta   Meta
	Totals Totals
	Stores []Store
	// Orphans are roles, agreements and policies whose store does not
	// exist (in the namespaces reported on).
	Orphans []Orphan
	// References lists every control dossierguard checks with the AVG
	// article or BIO control it serves.
	References []Reference
}

// Totals counts stores by verdict and controls by result.
type Totals struct {
	Stores                                      int
	StoresPass, StoresFail, StoresUnknown       int
	Controls                                    int
	ControlsPass, ControlsFail, ControlsUnknown int
}

// Result is the outcome of a control, a resource or a store.
type Result = v1alpha1.ComplianceResult

// The results.
const (
	Pass    = v1alpha1.ResultPass
	Fail    = v1alpha1.ResultFail
	Unknown = v1alpha1.ResultUnknown
)

// Condition is a condition as the report shows it.
type Condition struct {
	Status  string
	Reason  string
	Message string
}

// State is what the status of one resource says as a whole.
type State struct {
	// Verdict is Pass only when the status is current, Compliant is True
	// and every control passed; Fail when a control failed; Unknown
	// otherwise.
	Verdict Result
	// Evaluated is false when the resource has no status yet.
	Evaluated bool
	// Stale is true when the status describes an older generation of the
	// spec than the current one.
	Stale      bool
	Generation int64
	Observed   int64
	Ready      Condition
	Compliant  Condition
	Controls   []Control
}

// Control is one row of status.compliance.
type Control struct {
	Control   string
	Reference string
	Result    Result
	Reason    string
	Message   string
	Evidence  []string
}

// Store is one DossierStore with everything that refers to it.
type Store struct {
	Namespace       string
	Name            string
	Service         string
	Organisation    string
	Categories      []string
	Encryption      string
	KeyVersion      int32
	NextKeyRotation *time.Time
	State           State
	// Verdict is the store's own verdict combined with those of its roles,
	// agreements and policies: Fail if any failed, Pass only if all passed.
	Verdict    Result
	Roles      []Role
	Agreements []Agreement
	Retention  []Retention
	// Requests are the store's open data-subject requests, the earliest
	// deadline first.
	Requests []Request
}

// Request is an open DataSubjectRequest: a family's request that has not
// been decided yet. It shows no dossier, not even its pseudonym.
type Request struct {
	Name       string
	Type       string
	ReceivedAt time.Time
	// DueDate is the last day to decide (Europe/Amsterdam), empty before the
	// operator computed it.
	DueDate string
	// State is Open or Overdue as status says; empty before the operator
	// looked at the request.
	State string
	// Extended is true when the deadline was extended (AVG art. 12(3)).
	Extended bool
	Handler  string
}

// Overdue is true when the deadline has passed.
func (r Request) Overdue() bool { return r.State == string(v1alpha1.StateOverdue) }

// Role is an AccessRole.
type Role struct {
	Name              string
	Purpose           string
	Categories        []string
	Actions           []string
	Groups            []string
	ServiceAccounts   []string
	Users             int
	AssignedCasesOnly bool
	BreakGlass        bool
	ReviewPeriod      string
	ReviewDue         *time.Time
	Justification     string
	State             State
}

// Agreement is a SharingAgreement.
type Agreement struct {
	Name           string
	Partner        string
	PartnerType    string
	Direction      string
	Basis          string
	LegalReference string
	// Consent is the consent mode (Agreement or PerDossier), empty for a
	// basis without consent. The record's reference is evidence of the
	// LawfulBasis control, shown there as status reports it.
	Consent                    string
	ConsentWithdrawn           bool
	ConsentWithdrawnAt         *time.Time
	Categories                 []string
	Purpose                    string
	Justification              string
	ReviewDate                 *time.Time
	ValidFrom                  *time.Time
	ValidUntil                 *time.Time
	Suspended                  bool
	InForce                    bool
	ProxyEnforced              bool
	NextTransition             *time.Time
	ClientNotificationRequired bool
	State                      State
}

// Retention is a RetentionPolicy.
type Retention struct {
	Name     string
	Schedule string
	TimeZone string
	DryRun   bool
	Suspend  bool
	Rules    []RetentionRule
	LastRun  *RetentionRun
	NextRun  *time.Time
	State    State
}

// RetentionRule is one rule of a policy.
type RetentionRule struct {
	Name        string
	Description string
	Period      string
	Clock       string
	Action      string
	LegalHold   bool
	Extension   bool
}

// RetentionRun is the last sweep a policy reported.
type RetentionRun struct {
	Start       time.Time
	End         *time.Time
	Result      string
	Destroyed   int64
	Anonymised  int64
	Held        int64
	Overdue     int64
	ProofDigest string
}

// Orphan is a resource whose store does not exist.
type Orphan struct {
	Kind      string
	Namespace string
	Name      string
	Store     string
}

// Reference is a control and the law or standard it serves.
type Reference struct {
	Control   string
	Reference string
}

type storeKey struct{ namespace, name string }

// Build turns the resources into the compliance report. It is pure: the
// same input and meta give the same report.
func Build(in Input, meta Meta) Compliance {
	report := Compliance{Meta: meta, References: references()}
	index := map[storeKey]int{}
	for i := range in.Stores {
		report.Stores = append(report.Stores, newStore(&in.Stores[i]))
	}
	slices.SortFunc(report.Stores, func(a, b Store) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i, s := range report.Stores {
		index[storeKey{s.Namespace, s.Name}] = i
	}
	orphan := func(kind, namespace, name, store string) {
		report.Orphans = append(report.Orphans, Orphan{Kind: kind, Namespace: namespace, Name: name, Store: store})
	}
	for i := range in.Roles {
		r := &in.Roles[i]
		if s, ok := index[storeKey{r.Namespace, r.Spec.StoreRef.Name}]; ok {
			report.Stores[s].Roles = append(report.Stores[s].Roles, newRole(r))
		} else {
			orphan("AccessRole", r.Namespace, r.Name, r.Spec.StoreRef.Name)
		}
	}
	for i := range in.Agreements {
		a := &in.Agreements[i]
		if s, ok := index[storeKey{a.Namespace, a.Spec.StoreRef.Name}]; ok {
			report.Stores[s].Agreements = append(report.Stores[s].Agreements, newAgreement(a))
		} else {
			orphan("SharingAgreement", a.Namespace, a.Name, a.Spec.StoreRef.Name)
		}
	}
	for i := range in.Policies {
		p := &in.Policies[i]
		if s, ok := index[storeKey{p.Namespace, p.Spec.StoreRef.Name}]; ok {
			report.Stores[s].Retention = append(report.Stores[s].Retention, newRetention(p))
		} else {
			orphan("RetentionPolicy", p.Namespace, p.Name, p.Spec.StoreRef.Name)
		}
	}
	for i := range in.Requests {
		q := &in.Requests[i]
		if q.Spec.Decision != nil {
			continue // decided: no longer open
		}
		if s, ok := index[storeKey{q.Namespace, q.Spec.StoreRef.Name}]; ok {
			report.Stores[s].Requests = append(report.Stores[s].Requests, newRequest(q))
		} else {
			orphan("DataSubjectRequest", q.Namespace, q.Name, q.Spec.StoreRef.Name)
		}
	}
	slices.SortFunc(report.Orphans, func(a, b Orphan) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	for i := range report.Stores {
		s := &report.Stores[i]
		slices.SortFunc(s.Roles, func(a, b Role) int { return cmp.Compare(a.Name, b.Name) })
		slices.SortFunc(s.Agreements, func(a, b Agreement) int { return cmp.Compare(a.Name, b.Name) })
		slices.SortFunc(s.Retention, func(a, b Retention) int { return cmp.Compare(a.Name, b.Name) })
		slices.SortFunc(s.Requests, func(a, b Request) int {
			return cmp.Or(cmp.Compare(dueOrder(a.DueDate), dueOrder(b.DueDate)), cmp.Compare(a.Name, b.Name))
		})
		s.Verdict = s.combinedVerdict()
		report.Totals.add(s)
	}
	return report
}

func (t *Totals) add(s *Store) {
	t.Stores++
	switch s.Verdict {
	case Pass:
		t.StoresPass++
	case Fail:
		t.StoresFail++
	default:
		t.StoresUnknown++
	}
	count := func(st State) {
		for _, c := range st.Controls {
			t.Controls++
			switch c.Result {
			case Pass:
				t.ControlsPass++
			case Fail:
				t.ControlsFail++
			default:
				t.ControlsUnknown++
			}
		}
	}
	count(s.State)
	for _, r := range s.Roles {
		count(r.State)
	}
	for _, a := range s.Agreements {
		count(a.State)
	}
	for _, p := range s.Retention {
		count(p.State)
	}
}

// combinedVerdict is Fail when the store or anything of it failed, Pass
// when all passed, Unknown otherwise.
func (s *Store) combinedVerdict() Result {
	verdicts := []Result{s.State.Verdict}
	for _, r := range s.Roles {
		verdicts = append(verdicts, r.State.Verdict)
	}
	for _, a := range s.Agreements {
		verdicts = append(verdicts, a.State.Verdict)
	}
	for _, p := range s.Retention {
		verdicts = append(verdicts, p.State.Verdict)
	}
	switch {
	case slices.Contains(verdicts, Fail):
		return Fail
	case slices.ContainsFunc(verdicts, func(v Result) bool { return v != Pass }):
		return Unknown
	default:
		return Pass
	}
}

// newState reads the common status of a resource. It fails closed: a
// resource without status, with a status of an older generation or
// without controls is Unknown, never Pass.
func newState(generation int64, st *v1alpha1.CommonStatus) State {
	s := State{
		Generation: generation,
		Observed:   st.ObservedGeneration,
		Evaluated:  len(st.Conditions) > 0 || len(st.Compliance) > 0,
		Ready:      condition(st.Conditions, v1alpha1.ConditionReady),
		Compliant:  condition(st.Conditions, v1alpha1.ConditionCompliant),
	}
	s.Stale = s.Evaluated && st.ObservedGeneration != generation
	for _, c := range st.Compliance {
		ref := c.Reference
		if ref == "" {
			ref = compliance.References[c.Control]
		}
		s.Controls = append(s.Controls, Control{
			Control: c.Control, Reference: ref, Result: c.Result, Reason: c.Reason, Message: c.Message,
			Evidence: slices.Clone(c.Evidence),
		})
	}
	s.Verdict = s.verdict()
	return s
}

func (s *State) verdict() Result {
	if slices.ContainsFunc(s.Controls, func(c Control) bool { return c.Result == Fail }) {
		return Fail
	}
	if !s.Evaluated || s.Stale || len(s.Controls) == 0 || s.Compliant.Status != string(metav1.ConditionTrue) {
		return Unknown
	}
	if slices.ContainsFunc(s.Controls, func(c Control) bool { return c.Result != Pass }) {
		return Unknown
	}
	return Pass
}

func condition(conditions []metav1.Condition, conditionType string) Condition {
	for _, c := range conditions {
		if c.Type == conditionType {
			return Condition{Status: string(c.Status), Reason: c.Reason, Message: c.Message}
		}
	}
	return Condition{Status: string(metav1.ConditionUnknown)}
}

func newStore(s *v1alpha1.DossierStore) Store {
	return Store{
		Namespace:       s.Namespace,
		Name:            s.Name,
		Service:         string(s.Spec.Service),
		Organisation:    s.Spec.Organisation,
		Categories:      strs(s.Spec.DataCategories),
		Encryption:      s.Status.Encryption,
		KeyVersion:      s.Status.KeyVersion,
		NextKeyRotation: when(s.Status.NextKeyRotation),
		State:           newState(s.Generation, &s.Status.CommonStatus),
	}
}

func newRole(r *v1alpha1.AccessRole) Role {
	role := Role{
		Name:              r.Name,
		Purpose:           r.Spec.Purpose,
		Categories:        strs(r.Spec.Categories),
		Actions:           strs(r.Spec.Actions),
		AssignedCasesOnly: r.Spec.AssignedCasesOnly,
		Justification:     r.Spec.Justification,
		ReviewDue:         when(r.Status.ReviewDue),
		State:             newState(r.Generation, &r.Status.CommonStatus),
	}
	if r.Spec.BreakGlass != nil {
		role.BreakGlass = true
		role.ReviewPeriod = string(r.Spec.BreakGlass.ReviewPeriod)
	}
	// Groups and service accounts are functions; a user is a person, and
	// is counted, never named.
	for _, s := range r.Spec.Subjects {
		switch s.Kind {
		case v1alpha1.SubjectGroup:
			role.Groups = append(role.Groups, s.Name)
		case v1alpha1.SubjectServiceAccount:
			role.ServiceAccounts = append(role.ServiceAccounts, s.Namespace+"/"+s.Name)
		default:
			role.Users++
		}
	}
	sort.Strings(role.Groups)
	sort.Strings(role.ServiceAccounts)
	return role
}

func newAgreement(a *v1alpha1.SharingAgreement) Agreement {
	direction := a.Spec.Direction
	if direction == "" {
		direction = v1alpha1.DirectionEgress
	}
	ag := Agreement{
		Name:                       a.Name,
		Partner:                    a.Spec.Partner.Name,
		PartnerType:                string(a.Spec.Partner.Type),
		Direction:                  string(direction),
		Basis:                      string(a.Spec.LegalBasis),
		LegalReference:             a.Spec.LegalReference,
		Categories:                 strs(a.Spec.Categories),
		Purpose:                    a.Spec.Purpose,
		Justification:              a.Spec.Justification,
		ReviewDate:                 when(a.Spec.ReviewDate),
		ValidFrom:                  when(a.Spec.ValidFrom),
		ValidUntil:                 when(a.Spec.ValidUntil),
		Suspended:                  a.Spec.Suspended,
		InForce:                    a.Status.InForce,
		ProxyEnforced:              a.Status.ProxyEnforced,
		NextTransition:             when(a.Status.NextTransition),
		ClientNotificationRequired: a.Status.ClientNotificationRequired,
		State:                      newState(a.Generation, &a.Status.CommonStatus),
	}
	if c := a.Spec.Consent; c != nil {
		ag.Consent = string(c.EffectiveMode())
		ag.ConsentWithdrawn = c.Withdrawn
		ag.ConsentWithdrawnAt = when(c.WithdrawnAt)
	}
	return ag
}

func newRetention(p *v1alpha1.RetentionPolicy) Retention {
	r := Retention{
		Name:     p.Name,
		Schedule: p.Spec.Schedule,
		TimeZone: p.Spec.TimeZone,
		DryRun:   p.Spec.DryRun,
		Suspend:  p.Spec.Suspend,
		NextRun:  when(p.Status.NextRun),
		State:    newState(p.Generation, &p.Status.CommonStatus),
	}
	for _, rule := range p.Spec.Rules {
		action := rule.Action
		if action == "" {
			action = v1alpha1.ActionDelete
		}
		r.Rules = append(r.Rules, RetentionRule{
			Name: rule.Name, Description: rule.Description, Period: string(rule.Period),
			Clock: string(rule.Clock.Event), Action: string(action),
			LegalHold: rule.LegalHoldColumn != "", Extension: rule.ExtensionColumn != "",
		})
	}
	if run := p.Status.LastRun; run != nil {
		r.LastRun = &RetentionRun{
			Start: run.StartTime.UTC(), End: when(run.EndTime), Result: string(run.Result),
			Destroyed: run.Destroyed, Anonymised: run.Anonymised, Held: run.Held, Overdue: run.Overdue,
			ProofDigest: run.ProofDigest,
		}
	}
	return r
}

func newRequest(q *v1alpha1.DataSubjectRequest) Request {
	return Request{
		Name: q.Name, Type: string(q.Spec.Type), ReceivedAt: q.Spec.ReceivedAt.UTC(),
		DueDate: q.Status.DueDate, State: string(q.Status.State), Extended: q.Spec.Extension != nil, Handler: q.Spec.Handler,
	}
}

// dueOrder sorts a request without a computed deadline first: it is the
// one nobody can tell is in time.
func dueOrder(due string) string {
	if due == "" {
		return "0"
	}
	return due
}

// references lists compliance.References sorted by control.
func references() []Reference {
	refs := make([]Reference, 0, len(compliance.References))
	for c, r := range compliance.References {
		refs = append(refs, Reference{Control: c, Reference: r})
	}
	slices.SortFunc(refs, func(a, b Reference) int { return cmp.Compare(a.Control, b.Control) })
	return refs
}

func when(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}
