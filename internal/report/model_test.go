package report

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

func TestStateVerdict(t *testing.T) {
	pass := ctl("A", v1alpha1.ResultPass, "Ok", "")
	fail := ctl("B", v1alpha1.ResultFail, "Broken", "")
	unknown := ctl("C", v1alpha1.ResultUnknown, "Waiting", "")
	for _, tc := range []struct {
		name       string
		generation int64
		status     v1alpha1.CommonStatus
		verdict    Result
		evaluated  bool
		stale      bool
	}{
		{"no status at all", 1, v1alpha1.CommonStatus{}, Unknown, false, false},
		{"all pass and Compliant", 1, status(1, metav1.ConditionTrue, "AllControlsPass", pass), Pass, true, false},
		{"a control failed", 1, status(1, metav1.ConditionFalse, "ControlFailed", pass, fail), Fail, true, false},
		{"a control unknown", 1, status(1, metav1.ConditionFalse, "ControlFailed", pass, unknown), Unknown, true, false},
		{"failed and unknown: failed wins", 1, status(1, metav1.ConditionFalse, "ControlFailed", unknown, fail), Fail, true, false},
		{"stale status that passed", 3, status(2, metav1.ConditionTrue, "AllControlsPass", pass), Unknown, true, true},
		{"stale status that failed still fails", 3, status(2, metav1.ConditionFalse, "ControlFailed", fail), Fail, true, true},
		{"Compliant True without controls", 1, status(1, metav1.ConditionTrue, "AllControlsPass"), Unknown, true, false},
		{"controls pass but Compliant False", 1, status(1, metav1.ConditionFalse, "ControlFailed", pass), Unknown, true, false},
		{"controls pass, no Compliant condition", 1, v1alpha1.CommonStatus{ObservedGeneration: 1, Compliance: []v1alpha1.ComplianceControl{pass}}, Unknown, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.status
			got := newState(tc.generation, &st)
			if got.Verdict != tc.verdict || got.Evaluated != tc.evaluated || got.Stale != tc.stale {
				t.Errorf("verdict %s evaluated %v stale %v; want %s %v %v", got.Verdict, got.Evaluated, got.Stale, tc.verdict, tc.evaluated, tc.stale)
			}
		})
	}
}

func TestStateReferenceFromCompliance(t *testing.T) {
	st := v1alpha1.CommonStatus{Compliance: []v1alpha1.ComplianceControl{
		{Control: v1alpha1.ControlEncryptionAtRest, Result: v1alpha1.ResultPass},
		{Control: v1alpha1.ControlAuditActive, Reference: "as reported", Result: v1alpha1.ResultPass},
	}}
	got := newState(0, &st)
	if want := compliance.References[v1alpha1.ControlEncryptionAtRest]; want == "" || got.Controls[0].Reference != want {
		t.Errorf("reference of a row without one = %q; want compliance.References' %q", got.Controls[0].Reference, want)
	}
	if got.Controls[1].Reference != "as reported" {
		t.Errorf("reference reported in status = %q; want it kept", got.Controls[1].Reference)
	}
}

func TestBuild(t *testing.T) {
	r := Build(fixtureInput(), fixtureMeta(LangEN))

	var names []string
	for _, s := range r.Stores {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	if want := []string{"cjg/cjg-dossiers", "cjg/nieuw", "wijkteam/wijkteam-dossiers"}; !slices.Equal(names, want) {
		t.Fatalf("stores %v; want %v (sorted by namespace and name)", names, want)
	}
	cjg, nieuw, wijk := r.Stores[0], r.Stores[1], r.Stores[2]

	for _, tc := range []struct {
		store                        Store
		verdict                      Result
		roles, agreements, retention int
	}{
		// The store fails encryption at rest; its agreement is unknown.
		{cjg, Fail, 0, 1, 0},
		// Never reconciled.
		{nieuw, Unknown, 0, 0, 0},
		// Every control passes, but the break-glass role's status is stale.
		{wijk, Unknown, 2, 1, 1},
	} {
		s := tc.store
		if s.Verdict != tc.verdict || len(s.Roles) != tc.roles || len(s.Agreements) != tc.agreements || len(s.Retention) != tc.retention {
			t.Errorf("%s: verdict %s, %d roles, %d agreements, %d policies; want %s, %d, %d, %d",
				s.Name, s.Verdict, len(s.Roles), len(s.Agreements), len(s.Retention), tc.verdict, tc.roles, tc.agreements, tc.retention)
		}
	}
	if wijk.State.Verdict != Pass {
		t.Errorf("wijkteam-dossiers' own verdict %s; want Pass", wijk.State.Verdict)
	}
	if got := []string{wijk.Roles[0].Name, wijk.Roles[1].Name}; !slices.Equal(got, []string{"noodtoegang", "wijkcoach"}) {
		t.Errorf("roles %v; want sorted by name", got)
	}
	if !wijk.Roles[0].State.Stale || wijk.Roles[0].State.Verdict != Unknown {
		t.Errorf("noodtoegang: stale %v verdict %s; want a stale, unknown status", wijk.Roles[0].State.Stale, wijk.Roles[0].State.Verdict)
	}

	want := Totals{Stores: 3, StoresPass: 0, StoresFail: 1, StoresUnknown: 2, Controls: 12, ControlsPass: 10, ControlsFail: 1, ControlsUnknown: 1}
	if r.Totals != want {
		t.Errorf("totals %+v; want %+v", r.Totals, want)
	}
	if len(r.Orphans) != 2 || r.Orphans[0] != (Orphan{Kind: "DataSubjectRequest", Namespace: "cjg", Name: "verzet-2026-0003", Store: "opgeheven"}) ||
		r.Orphans[1] != (Orphan{Kind: "RetentionPolicy", Namespace: "cjg", Name: "oud-beleid", Store: "opgeheven"}) {
		t.Errorf("orphans %+v; want the open request and the policy of the store that does not exist", r.Orphans)
	}
	if len(r.References) != len(compliance.References) || !slices.IsSortedFunc(r.References, func(a, b Reference) int { return strings.Compare(a.Control, b.Control) }) {
		t.Errorf("references %v; want every control of compliance.References, sorted", r.References)
	}
}

// What may identify a person never enters the model: users are counted,
// not named. Nor do the database credentials, the columns of the rules or
// a consent record's reference outside the evidence of status.
func TestBuildLeavesOutPersonsAndRecords(t *testing.T) {
	r := Build(fixtureInput(), fixtureMeta(LangNL))
	role := r.Stores[2].Roles[1]
	if role.Users != 1 || !slices.Equal(role.Groups, []string{"wijkteam-coaches"}) || !slices.Equal(role.ServiceAccounts, []string{"wijkteam/planner"}) {
		t.Errorf("wijkcoach subjects: %d users, groups %v, service accounts %v", role.Users, role.Groups, role.ServiceAccounts)
	}
	dump := fmt.Sprintf("%+v", r)
	for _, secret := range []string{"j.devries@gemeente.example", "TOE-2026-000123", "wijkteam-db", "einde_hulp", "legal_hold"} {
		if strings.Contains(dump, secret) {
			t.Errorf("the model holds %q", secret)
		}
	}
	ag := r.Stores[2].Agreements[0]
	if ag.Consent != string(v1alpha1.ConsentAgreement) || ag.Direction != string(v1alpha1.DirectionIngress) {
		t.Errorf("agreement consent %q direction %q", ag.Consent, ag.Direction)
	}
}

func TestBuildDefaults(t *testing.T) {
	in := Input{
		Stores: []v1alpha1.DossierStore{{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "s"}}},
		Agreements: []v1alpha1.SharingAgreement{{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x"},
			Spec: v1alpha1.SharingAgreementSpec{StoreRef: v1alpha1.StoreReference{Name: "s"}}}},
		Policies: []v1alpha1.RetentionPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p"},
			Spec: v1alpha1.RetentionPolicySpec{StoreRef: v1alpha1.StoreReference{Name: "s"}, Rules: []v1alpha1.RetentionRule{{Name: "r"}}}}},
		// Same store name in another namespace: not the same store.
		Roles: []v1alpha1.AccessRole{{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "r"},
			Spec: v1alpha1.AccessRoleSpec{StoreRef: v1alpha1.StoreReference{Name: "s"}}}},
	}
	r := Build(in, Meta{})
	s := r.Stores[0]
	if s.Agreements[0].Direction != string(v1alpha1.DirectionEgress) || s.Retention[0].Rules[0].Action != string(v1alpha1.ActionDelete) {
		t.Errorf("direction %q action %q; want the API's defaults Egress and Delete", s.Agreements[0].Direction, s.Retention[0].Rules[0].Action)
	}
	if len(s.Roles) != 0 || len(r.Orphans) != 1 || r.Orphans[0].Namespace != "b" {
		t.Errorf("a role of another namespace: roles %v orphans %v", s.Roles, r.Orphans)
	}
	if r.Totals.Stores != 1 || r.Totals.StoresUnknown != 1 {
		t.Errorf("totals %+v", r.Totals)
	}
}

func TestBuildRequests(t *testing.T) {
	in := fixtureInput()
	in.Requests = append(in.Requests,
		fixtureRequest("wijkteam", "aanvulling-2026-0002", "wijkteam-dossiers", v1alpha1.RequestCompletion, "", "", false))
	r := Build(in, fixtureMeta(LangNL))
	var wijkteam *Store
	for i := range r.Stores {
		if r.Stores[i].Name == "wijkteam-dossiers" {
			wijkteam = &r.Stores[i]
		}
	}
	if wijkteam == nil {
		t.Fatal("no wijkteam store")
	}
	var names []string
	for _, q := range wijkteam.Requests {
		names = append(names, q.Name)
	}
	// Open ones only (the decided restriction is not), the request without
	// a computed deadline first, then by due date.
	if got, want := strings.Join(names, ","), "aanvulling-2026-0002,correctie-2026-0012,inzage-2026-0051"; got != want {
		t.Errorf("open requests %s; want %s", got, want)
	}
	if !wijkteam.Requests[1].Overdue() || wijkteam.Requests[2].Overdue() || !wijkteam.Requests[1].Extended {
		t.Errorf("overdue/extended wrong: %+v", wijkteam.Requests)
	}
	if !slices.ContainsFunc(r.Orphans, func(o Orphan) bool { return o.Kind == "DataSubjectRequest" && o.Name == "verzet-2026-0003" }) {
		t.Errorf("the open request of a missing store is not an orphan: %+v", r.Orphans)
	}
}
