package controllers

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

func statusPolicy() *v1alpha1.RetentionPolicy {
	rule := func(name string, period v1alpha1.RetentionPeriod) v1alpha1.RetentionRule {
		return v1alpha1.RetentionRule{Name: name, Table: "contacts", Period: period,
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact"}}
	}
	return &v1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "contacts", Namespace: "zorg", Generation: 2,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))},
		Spec: v1alpha1.RetentionPolicySpec{
			StoreRef: v1alpha1.StoreReference{Name: "wijkteam"},
			Schedule: "0 3 * * *",
			Rules:    []v1alpha1.RetentionRule{rule("contacts", "P7Y"), rule("notes", "P5Y"), rule("letters", "P7Y")},
		},
	}
}

// retentionFactsFor is what the reconciler would find for p: its store
// (nil when missing), its schedule and its last run.
func retentionFactsFor(t *testing.T, p *v1alpha1.RetentionPolicy, store bool, lastRun *v1alpha1.RetentionRun) retentionFacts {
	t.Helper()
	schedule, err := compliance.Schedule(p.Spec.Schedule, p.Spec.TimeZone)
	f := retentionFacts{now: statusNow, sweeperReady: true, scheduleErr: err,
		enforcement: compliance.EnforcementFacts{Schedule: schedule, Created: p.CreationTimestamp.Time, LastRun: lastRun}}
	if store {
		f.store = &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "wijkteam"}, Spec: v1alpha1.DossierStoreSpec{Service: v1alpha1.ServiceNeighbourhoodTeam}}
		f.checks = compliance.CheckRules(p.Spec.Rules, f.store.Spec.Service, compliance.DefaultStatutes)
	}
	return f
}

func TestSetRetentionStatus(t *testing.T) {
	ran := &v1alpha1.RetentionRun{StartTime: metav1.NewTime(time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC)), Result: v1alpha1.RunSucceeded, Destroyed: 12}
	scheduled := wantCondition{"True", "CronJobApplied", []string{`CronJob contacts-retention runs "0 3 * * *" (UTC)`}}
	ready := wantCondition{"True", "SweeperScheduled", []string{"scheduled"}}
	notScheduled := wantCondition{"False", "DependencyUnavailable", []string{"the sweeper is not scheduled"}}
	cases := []struct {
		name      string
		policy    func(*v1alpha1.RetentionPolicy)
		store     bool
		lastRun   *v1alpha1.RetentionRun
		facts     func(*retentionFacts)
		controls  []string
		cronJob   string
		nextRun   *time.Time
		sweeper   wantCondition
		enforced  wantCondition
		compliant wantCondition
		ready     wantCondition
	}{
		{"lawful and enforced", nil, true, ran, nil, []string{"StatutoryRetention", "RetentionEnforced"}, "contacts-retention",
			ptr(time.Date(2026, 3, 16, 3, 0, 0, 0, time.UTC)), scheduled,
			wantCondition{"True", "RunSucceeded", []string{"the last sweep ran at 2026-03-15T03:00:00Z"}},
			wantCondition{"True", "AllControlsPass", []string{"all 2 controls pass"}}, ready},
		// The operator's clock may run in local time; nextRun is UTC all the same.
		{"in a named time zone", func(p *v1alpha1.RetentionPolicy) { p.Spec.TimeZone = "Europe/Amsterdam" }, true, ran,
			func(f *retentionFacts) { f.now = f.now.In(time.FixedZone("CET", 3600)) },
			[]string{"StatutoryRetention", "RetentionEnforced"}, "contacts-retention", ptr(time.Date(2026, 3, 16, 2, 0, 0, 0, time.UTC)),
			wantCondition{"True", "CronJobApplied", []string{`runs "0 3 * * *" (Europe/Amsterdam)`}},
			wantCondition{"True", "RunSucceeded", nil}, wantCondition{"True", "AllControlsPass", nil}, ready},
		{"awaiting the first run", nil, true, nil, func(f *retentionFacts) { f.now = time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC) },
			[]string{"StatutoryRetention", "RetentionEnforced"}, "contacts-retention", ptr(time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)), scheduled,
			wantCondition{"False", "AwaitingFirstRun", []string{"first is due at 2026-03-02T03:00:00Z"}},
			wantCondition{"False", "ControlFailed", []string{"RetentionEnforced (AVG art. 5(1)(e), art. 17; BIO 8.10)"}}, ready},
		{"suspended", func(p *v1alpha1.RetentionPolicy) { p.Spec.Suspend = true }, true, ran, nil,
			[]string{"StatutoryRetention", "RetentionEnforced"}, "contacts-retention", nil, scheduled,
			wantCondition{"False", "Suspended", []string{"the sweep is suspended; nothing is destroyed"}},
			wantCondition{"False", "ControlFailed", []string{"RetentionEnforced", "suspended"}}, ready},
		{"a period beyond the statute", func(p *v1alpha1.RetentionPolicy) { p.Spec.Rules[1].Period = "P10Y" }, true, ran, nil,
			[]string{"StatutoryRetention", "RetentionEnforced"}, "contacts-retention", ptr(time.Date(2026, 3, 16, 3, 0, 0, 0, time.UTC)), scheduled,
			wantCondition{"True", "RunSucceeded", nil},
			wantCondition{"False", "ControlFailed", []string{"StatutoryRetention (AVG art. 5(1)(e); Jeugdwet art. 7.3.8; Archiefwet): rule notes keeps P10Y"}}, ready},
		{"invalid schedule", func(p *v1alpha1.RetentionPolicy) { p.Spec.Schedule = "nightly" }, true, ran, func(f *retentionFacts) { f.sweeperReady = false },
			[]string{"StatutoryRetention", "RetentionEnforced"}, "", nil,
			wantCondition{"False", "InvalidSchedule", []string{`spec.schedule "nightly" is not a valid cron schedule`}},
			wantCondition{"False", "InvalidSchedule", []string{"cannot be parsed"}},
			wantCondition{"False", "ControlFailed", []string{"RetentionEnforced"}}, notScheduled},
		{"unknown time zone", func(p *v1alpha1.RetentionPolicy) { p.Spec.TimeZone = "Mars/Olympus" }, true, ran, func(f *retentionFacts) { f.sweeperReady = false },
			[]string{"StatutoryRetention", "RetentionEnforced"}, "", nil,
			wantCondition{"False", "InvalidSchedule", []string{`spec.timeZone "Mars/Olympus"`}},
			wantCondition{"False", "InvalidSchedule", nil}, wantCondition{"False", "ControlFailed", nil}, notScheduled},
		{"CronJob not applied", nil, true, ran, func(f *retentionFacts) { f.sweeperReady = false },
			[]string{"StatutoryRetention", "RetentionEnforced"}, "", ptr(time.Date(2026, 3, 16, 3, 0, 0, 0, time.UTC)),
			wantCondition{"False", "DependencyUnavailable", []string{"CronJob could not be applied"}},
			wantCondition{"True", "RunSucceeded", nil}, wantCondition{"True", "AllControlsPass", nil}, notScheduled},
		{"store not found", nil, false, ran, nil, []string{"RetentionEnforced"}, "contacts-retention", ptr(time.Date(2026, 3, 16, 3, 0, 0, 0, time.UTC)), scheduled,
			wantCondition{"True", "RunSucceeded", nil}, wantCondition{"True", "AllControlsPass", []string{"all 1 controls pass"}},
			wantCondition{"False", "StoreNotFound", []string{`DossierStore "wijkteam" does not exist`}}},
		{"store not found decides Ready before the sweeper", nil, false, ran, func(f *retentionFacts) { f.sweeperReady = false },
			[]string{"RetentionEnforced"}, "", ptr(time.Date(2026, 3, 16, 3, 0, 0, 0, time.UTC)),
			wantCondition{"False", "DependencyUnavailable", nil}, wantCondition{"True", "RunSucceeded", nil}, wantCondition{"True", "AllControlsPass", nil},
			wantCondition{"False", "StoreNotFound", nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := statusPolicy()
			if tc.policy != nil {
				tc.policy(p)
			}
			p.Status.LastRun = tc.lastRun
			p.Status.CronJobName = "stale"
			f := retentionFactsFor(t, p, tc.store, tc.lastRun)
			if tc.facts != nil {
				tc.facts(&f)
			}
			setRetentionStatus(p, f)
			st := &p.Status
			if st.ObservedGeneration != 2 || st.Periods != periodsFor(p) || st.CronJobName != tc.cronJob {
				t.Errorf("status = generation %d, periods %q, cronJob %q; want 2, %q, %q", st.ObservedGeneration, st.Periods, st.CronJobName, periodsFor(p), tc.cronJob)
			}
			switch {
			case tc.nextRun == nil && st.NextRun != nil:
				t.Errorf("nextRun = %s; want none", st.NextRun)
			case tc.nextRun != nil && (st.NextRun == nil || !st.NextRun.Time.Equal(*tc.nextRun) || st.NextRun.Location() != time.UTC):
				t.Errorf("nextRun = %v; want %s in UTC", st.NextRun, tc.nextRun)
			}
			if st.LastRun != tc.lastRun {
				t.Errorf("lastRun = %+v; want the sweeper's own report kept", st.LastRun)
			}
			if got := controlNames(st.Compliance); !slices.Equal(got, tc.controls) {
				t.Errorf("compliance rows = %v; want %v", got, tc.controls)
			}
			assertCondition(t, st.Conditions, "SweeperScheduled", 2, tc.sweeper)
			assertCondition(t, st.Conditions, "RetentionEnforced", 2, tc.enforced)
			assertCondition(t, st.Conditions, "Compliant", 2, tc.compliant)
			assertCondition(t, st.Conditions, "Ready", 2, tc.ready)
			if len(st.Conditions) != 4 {
				t.Errorf("conditions = %v; want four", conditionTypes(st.Conditions))
			}
		})
	}
}

// periodsFor is the printer column's value for the policies above.
func periodsFor(p *v1alpha1.RetentionPolicy) string {
	if p.Spec.Rules[1].Period == "P10Y" {
		return "P10Y,P7Y"
	}
	return "P5Y,P7Y"
}

func ptr(t time.Time) *time.Time { return &t }

func TestRetentionOutcomes(t *testing.T) {
	policy := func(name string, controls ...v1alpha1.ComplianceControl) v1alpha1.RetentionPolicy {
		p := v1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
		p.Status.Compliance = controls
		return p
	}
	row := func(control string, result v1alpha1.ComplianceResult, reason string) v1alpha1.ComplianceControl {
		return v1alpha1.ComplianceControl{Control: control, Result: result, Reason: reason}
	}
	got := retentionOutcomes([]v1alpha1.RetentionPolicy{
		policy("fresh"),
		policy("enforced", row("StatutoryRetention", "Pass", "WithinStatutoryRange"), row("RetentionEnforced", "Pass", "RunSucceeded")),
		policy("unlawful", row("StatutoryRetention", "Fail", "BeyondStorageLimit"), row("RetentionEnforced", "Pass", "RunSucceeded")),
		policy("unlawful-last", row("RetentionEnforced", "Pass", "RunSucceeded"), row("StatutoryRetention", "Fail", "BelowStatutoryMinimum")),
		policy("missed", row("StatutoryRetention", "Pass", "WithinStatutoryRange"), row("RetentionEnforced", "Fail", "RunMissed")),
		policy("waiting", row("StatutoryRetention", "Pass", "JustifiedException"), row("RetentionEnforced", "Unknown", "AwaitingFirstRun")),
		policy("storeless", row("RetentionEnforced", "Pass", "RunSucceeded")),
		policy("other-rows-only", row("Something", "Fail", "Else")),
	})
	want := []compliance.RetentionOutcome{
		{Name: "fresh", Result: "Unknown", Reason: "Pending"},
		{Name: "enforced", Result: "Pass", Reason: "RunSucceeded"},
		{Name: "unlawful", Result: "Fail", Reason: "BeyondStorageLimit"},
		{Name: "unlawful-last", Result: "Fail", Reason: "BelowStatutoryMinimum"},
		{Name: "missed", Result: "Fail", Reason: "RunMissed"},
		{Name: "waiting", Result: "Unknown", Reason: "AwaitingFirstRun"},
		{Name: "storeless", Result: "Pass", Reason: "RunSucceeded"},
		{Name: "other-rows-only", Result: "Unknown", Reason: "Pending"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("retentionOutcomes =\n%+v\nwant\n%+v", got, want)
	}
	if out := retentionOutcomes(nil); len(out) != 0 {
		t.Errorf("retentionOutcomes(nil) = %#v; want no outcomes", out)
	}
}
