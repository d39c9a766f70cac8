package compliance

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func testRole(mutate func(*v1alpha1.AccessRole)) *v1alpha1.AccessRole {
	r := &v1alpha1.AccessRole{
		ObjectMeta: metav1.ObjectMeta{Name: "wijkteam-read", CreationTimestamp: metav1.NewTime(testNow.AddDate(0, 0, -100))},
		Spec: v1alpha1.AccessRoleSpec{
			StoreRef: v1alpha1.StoreReference{Name: "jgz"},
			Subjects: []v1alpha1.Subject{{Kind: "Group", Name: "wijkteam"}, {Kind: "User", Name: "coordinator"}},
			// Out of canonical order on purpose: messages list categories canonically.
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryContact, v1alpha1.CategoryIdentity},
			Actions:    []v1alpha1.Action{v1alpha1.ActionRead, v1alpha1.ActionWrite},
			Purpose:    "care coordination",
		},
	}
	if mutate != nil {
		mutate(r)
	}
	return r
}

func breakGlass(period v1alpha1.Period, lastReviewed *time.Time) func(*v1alpha1.AccessRole) {
	return func(r *v1alpha1.AccessRole) {
		r.Spec.BreakGlass = &v1alpha1.BreakGlass{ReviewPeriod: period}
		if lastReviewed != nil {
			r.Spec.BreakGlass.LastReviewed = &metav1.Time{Time: *lastReviewed}
		}
		r.Spec.Justification = "acute safety of a child"
	}
}

func TestEvaluateRole(t *testing.T) {
	store := StoreView{Found: true, Ready: true, Categories: []v1alpha1.DataCategory{
		v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryHealth}}
	at := func(tm time.Time) *time.Time { return &tm }
	notBreakGlass := wantControl{"BreakGlassReview", "Pass", "NotBreakGlass", []string{"not a break-glass role"}, nil}
	withinStore := wantControl{"NeedToKnow", "Pass", "WithinStoreCategories",
		[]string{"grants [identity, contact] of the store's [identity, contact, health] for: care coordination"}, nil}
	reviewed := testNow.AddDate(0, 0, -10)
	cases := []struct {
		name        string
		role        *v1alpha1.AccessRole
		store       StoreView
		enforceable bool
		reason      string
		message     []string
		reviewDue   *time.Time
		needToKnow  wantControl
		review      wantControl
	}{
		{"within the store's categories", testRole(nil), store, true, "Enforced",
			[]string{"read/write of [identity, contact] for 2 subject(s)", "access policy"}, nil, withinStore, notBreakGlass},
		{"assigned cases only", testRole(func(r *v1alpha1.AccessRole) { r.Spec.AssignedCasesOnly = true }), store, true, "Enforced", nil, nil,
			wantControl{"NeedToKnow", "Pass", "WithinStoreCategories", []string{"for: care coordination; only assigned cases"}, nil}, notBreakGlass},
		{"a category the store does not hold", testRole(func(r *v1alpha1.AccessRole) {
			r.Spec.Categories = append(r.Spec.Categories, v1alpha1.CategorySafety, v1alpha1.CategoryFinance)
		}), store, false, "CategoriesNotInStore",
			[]string{"categories [safety, finance] are not held by store jgz", "left out of the access policy"}, nil,
			wantControl{"NeedToKnow", "Fail", "CategoriesNotInStore", []string{"categories [safety, finance] are not held by store jgz"}, nil}, notBreakGlass},
		{"store with no categories", testRole(nil), StoreView{Found: true}, false, "CategoriesNotInStore",
			[]string{"[identity, contact] are not held by store jgz"}, nil,
			wantControl{"NeedToKnow", "Fail", "CategoriesNotInStore", []string{"[identity, contact]"}, nil}, notBreakGlass},
		{"store not found", testRole(nil), StoreView{}, false, "StoreNotFound",
			[]string{`DossierStore "jgz" does not exist`}, nil,
			wantControl{"NeedToKnow", "Fail", "StoreNotFound", []string{"does not exist"}, nil}, notBreakGlass},
		{"an unready store still enforces its roles", testRole(nil), StoreView{Found: true, Categories: store.Categories}, true, "Enforced", nil, nil,
			withinStore, notBreakGlass},
		{"break-glass review current", testRole(breakGlass("P30D", &reviewed)), store, true, "Enforced", nil, at(reviewed.AddDate(0, 0, 30)),
			withinStore, wantControl{"BreakGlassReview", "Pass", "ReviewCurrent", []string{"next review due 2026-04-04T12:00:00Z"}, []string{"justification recorded"}}},
		{"break-glass review due one second from now", testRole(breakGlass("P30D", at(testNow.AddDate(0, 0, -30).Add(time.Second)))), store, true, "Enforced", nil,
			at(testNow.Add(time.Second)), withinStore,
			wantControl{"BreakGlassReview", "Pass", "ReviewCurrent", []string{"next review due 2026-03-15T12:00:01Z"}, []string{"justification recorded"}}},
		{"break-glass review due exactly now", testRole(breakGlass("P30D", at(testNow.AddDate(0, 0, -30)))), store, true, "Enforced", nil, at(testNow),
			withinStore, wantControl{"BreakGlassReview", "Fail", "ReviewOverdue",
				[]string{"due for review at 2026-03-15T12:00:00Z", "spec.breakGlass.lastReviewed"}, nil}},
		{"never reviewed counts from creation", testRole(breakGlass("P4W", nil)), store, true, "Enforced", nil, at(testNow.AddDate(0, 0, -100+28)),
			withinStore, wantControl{"BreakGlassReview", "Fail", "ReviewOverdue", []string{"due for review at 2026-01-02T12:00:00Z"}, nil}},
		{"review period in years", testRole(breakGlass("P1Y", &reviewed)), store, true, "Enforced", nil, at(reviewed.AddDate(1, 0, 0)),
			withinStore, wantControl{"BreakGlassReview", "Pass", "ReviewCurrent", []string{"next review due 2027-03-05T12:00:00Z"}, []string{"justification recorded"}}},
		{"unparsable review period is due at once", testRole(breakGlass("", &reviewed)), store, true, "Enforced", nil, at(reviewed),
			withinStore, wantControl{"BreakGlassReview", "Fail", "ReviewOverdue", []string{"due for review at 2026-03-05T12:00:00Z"}, nil}},
		{"overdue review of a role outside the store's categories", testRole(func(r *v1alpha1.AccessRole) {
			breakGlass("P30D", at(testNow.AddDate(0, -2, 0)))(r)
			r.Spec.Categories = []v1alpha1.DataCategory{v1alpha1.CategoryFamily}
		}), store, false, "CategoriesNotInStore", []string{"[family]"}, at(testNow.AddDate(0, -2, 30)),
			wantControl{"NeedToKnow", "Fail", "CategoriesNotInStore", []string{"[family]"}, nil},
			wantControl{"BreakGlassReview", "Fail", "ReviewOverdue", []string{"due for review"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := EvaluateRole(tc.role, tc.store, testNow)
			if v.Enforceable != tc.enforceable || v.Reason != tc.reason {
				t.Errorf("verdict = enforceable %v, %s (%q); want %v, %s", v.Enforceable, v.Reason, v.Message, tc.enforceable, tc.reason)
			}
			assertContains(t, "message", v.Message, tc.message)
			switch {
			case tc.reviewDue == nil && v.ReviewDue != nil:
				t.Errorf("ReviewDue = %s; want none", v.ReviewDue)
			case tc.reviewDue != nil && (v.ReviewDue == nil || !v.ReviewDue.Equal(*tc.reviewDue)):
				t.Errorf("ReviewDue = %v; want %s", v.ReviewDue, tc.reviewDue)
			}
			assertControls(t, v.Controls, tc.needToKnow, tc.review)
		})
	}
}

func TestAddPeriod(t *testing.T) {
	base := time.Date(2024, 1, 31, 8, 30, 0, 0, time.UTC)
	cases := []struct {
		period v1alpha1.Period
		want   time.Time
	}{
		{"P20Y", time.Date(2044, 1, 31, 8, 30, 0, 0, time.UTC)},
		{"P6M", time.Date(2024, 7, 31, 8, 30, 0, 0, time.UTC)},
		// AddDate normalises: 31 January plus one month is 2 March in a leap year.
		{"P1M", time.Date(2024, 3, 2, 8, 30, 0, 0, time.UTC)},
		{"P4W", time.Date(2024, 2, 28, 8, 30, 0, 0, time.UTC)},
		{"P30D", time.Date(2024, 3, 1, 8, 30, 0, 0, time.UTC)},
		{"P1D", time.Date(2024, 2, 1, 8, 30, 0, 0, time.UTC)},
		{"P9999D", base.AddDate(0, 0, 9999)},
		// Anything unparsable or not positive adds nothing.
		{"", base}, {"P", base}, {"P0Y", base}, {"P-1Y", base}, {"20Y", base}, {"P5X", base}, {"PT5H", base}, {"p5y", base},
		// Only the API's pattern: no second unit, sign, space, leading zero or fifth digit.
		{"P1Y6M", base}, {"P5Yx", base}, {"P+5Y", base}, {"P 5Y", base}, {"P05Y", base}, {"P10000D", base},
	}
	for _, tc := range cases {
		if got := AddPeriod(base, tc.period); !got.Equal(tc.want) {
			t.Errorf("AddPeriod(%s, %q) = %s; want %s", base, tc.period, got, tc.want)
		}
	}
}

func TestAccessControlControl(t *testing.T) {
	cases := []struct {
		name  string
		roles []RoleSummary
		want  wantControl
	}{
		{"no roles", nil, wantControl{"AccessControlDefined", "Fail", "NoAccessRoles",
			[]string{"no AccessRole grants access", "denies every request"}, nil}},
		{"empty list", []RoleSummary{}, wantControl{"AccessControlDefined", "Fail", "NoAccessRoles", nil, nil}},
		{"one enforced role", []RoleSummary{{Name: "read", Enforceable: true}},
			wantControl{"AccessControlDefined", "Pass", "RolesDefined", []string{"1 access role(s)"},
				[]string{"ConfigMap/jgz-access-policy", "AccessRole/read"}}},
		{"several enforced roles", []RoleSummary{{Name: "read", Enforceable: true}, {Name: "write", Enforceable: true}},
			wantControl{"AccessControlDefined", "Pass", "RolesDefined", []string{"2 access role(s)"},
				[]string{"ConfigMap/jgz-access-policy", "AccessRole/read", "AccessRole/write"}}},
		{"one rejected role fails the store", []RoleSummary{{Name: "read", Enforceable: true}, {Name: "too-wide", Enforceable: false}},
			wantControl{"AccessControlDefined", "Fail", "RoleRejected", []string{"roles [too-wide]", "not enforced"},
				[]string{"ConfigMap/jgz-access-policy", "AccessRole/read", "AccessRole/too-wide"}}},
		{"every role rejected", []RoleSummary{{Name: "a"}, {Name: "b"}},
			wantControl{"AccessControlDefined", "Fail", "RoleRejected", []string{"roles [a b]"},
				[]string{"ConfigMap/jgz-access-policy", "AccessRole/a", "AccessRole/b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, AccessControlControl(tc.roles, "jgz-access-policy"), tc.want)
		})
	}
}

func TestMinimisationControl(t *testing.T) {
	cases := []struct {
		name       string
		violating  []string
		agreements int
		want       wantControl
	}{
		{"no agreements", nil, 0, wantControl{"Minimisation", "Pass", "NoViolations", []string{"all 0 sharing agreement(s)"}, nil}},
		{"agreements within their maxima", []string{}, 3, wantControl{"Minimisation", "Pass", "NoViolations",
			[]string{"all 3 sharing agreement(s)", "partner's maximum"}, nil}},
		{"one agreement shares too much", []string{"school"}, 3, wantControl{"Minimisation", "Fail", "MinimisationViolated",
			[]string{"1 sharing agreement(s)", "not in force"}, []string{"SharingAgreement/school"}}},
		{"each violating agreement is named", []string{"school", "police"}, 2, wantControl{"Minimisation", "Fail", "MinimisationViolated",
			[]string{"2 sharing agreement(s)"}, []string{"SharingAgreement/school", "SharingAgreement/police"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, MinimisationControl(tc.violating, tc.agreements), tc.want)
		})
	}
}
