package compliance

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func testRule(name string, period v1alpha1.RetentionPeriod, justification string) v1alpha1.RetentionRule {
	return v1alpha1.RetentionRule{
		Name: name, Table: "contacts", Period: period, Justification: justification,
		Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact"},
	}
}

func TestCheckRules(t *testing.T) {
	const source = "privacy statements of the neighbourhood teams, Selectielijst gemeenten: 5 years after the last contact"
	type row struct {
		rule    string
		pass    bool
		reason  string
		message []string
	}
	cases := []struct {
		name     string
		rules    []v1alpha1.RetentionRule
		service  v1alpha1.Service
		statutes map[v1alpha1.Service]Statute
		want     []row
	}{
		{"exactly the minimum", []v1alpha1.RetentionRule{testRule("contacts", "P5Y", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "WithinStatutoryRange", []string{"rule contacts keeps P5Y after LastContact (" + source + ")"}}}},
		{"exactly the maximum", []v1alpha1.RetentionRule{testRule("contacts", "P7Y", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "WithinStatutoryRange", []string{"keeps P7Y"}}}},
		{"the minimum in months", []v1alpha1.RetentionRule{testRule("contacts", "P60M", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "WithinStatutoryRange", []string{"keeps P60M"}}}},
		{"one month too short", []v1alpha1.RetentionRule{testRule("contacts", "P59M", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", false, "BelowStatutoryMinimum", []string{"rule contacts keeps P59M, shorter than the statutory P5Y (" + source + ")"}}}},
		// 1825 days from 1 January 2000 cross two leap days: short of five years.
		{"five times 365 days is less than five years", []v1alpha1.RetentionRule{testRule("contacts", "P1825D", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", false, "BelowStatutoryMinimum", []string{"keeps P1825D"}}}},
		{"one month too long", []v1alpha1.RetentionRule{testRule("contacts", "P85M", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", false, "BeyondStorageLimit", []string{"rule contacts keeps P85M, longer than needed (more than P7Y; " + source + ")"}}}},
		{"P0D is below every minimum", []v1alpha1.RetentionRule{testRule("contacts", "P0D", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", false, "BelowStatutoryMinimum", []string{"rule contacts keeps P0D, shorter than the statutory P5Y"}}}},
		{"P0D justified", []v1alpha1.RetentionRule{testRule("contacts", "P0D", "register: removed when the involvement ends")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "JustifiedException", []string{"keeps P0D", "; justified: register"}}}},
		{"an unparsable period is below the minimum", []v1alpha1.RetentionRule{testRule("contacts", "", "")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", false, "BelowStatutoryMinimum", []string{"rule contacts keeps , shorter"}}}},
		{"justified beyond the maximum", []v1alpha1.RetentionRule{testRule("contacts", "P10Y", "legal hold ordered by the court")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "JustifiedException", []string{"longer than needed", "; justified: legal hold ordered by the court"}}}},
		{"justified below the minimum", []v1alpha1.RetentionRule{testRule("contacts", "P1Y", "anonymised research set")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "JustifiedException", []string{"shorter than the statutory P5Y", "; justified: anonymised research set"}}}},
		{"a blank justification justifies nothing", []v1alpha1.RetentionRule{testRule("contacts", "P10Y", "  \t")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", false, "BeyondStorageLimit", []string{"keeps P10Y"}}}},
		{"a justification within the range changes nothing", []v1alpha1.RetentionRule{testRule("contacts", "P6Y", "because")}, "NeighbourhoodTeam", DefaultStatutes,
			[]row{{"contacts", true, "WithinStatutoryRange", []string{"keeps P6Y"}}}},
		{"no statute for the service, justified or not", []v1alpha1.RetentionRule{testRule("a", "P5Y", ""), testRule("b", "P5Y", "we think so")}, "Bakery", DefaultStatutes,
			[]row{{"a", false, "NoStatuteForService", []string{"rule a: no statutory retention is configured for service Bakery"}},
				{"b", false, "NoStatuteForService", []string{"rule b:", "service Bakery"}}}},
		{"a configured table replaces the defaults", []v1alpha1.RetentionRule{testRule("contacts", "P5Y", "")}, "NeighbourhoodTeam",
			map[v1alpha1.Service]Statute{"NeighbourhoodTeam": {Clock: v1alpha1.ClockLastContact, Minimum: "P10Y", Maximum: "P12Y", Source: "local rule"}},
			[]row{{"contacts", false, "BelowStatutoryMinimum", []string{"shorter than the statutory P10Y (local rule)"}}}},
		{"each rule is checked, in order", []v1alpha1.RetentionRule{testRule("short", "P2Y", ""), testRule("right", "P20Y", ""), testRule("long", "P30Y", "")},
			"YouthCare", DefaultStatutes,
			[]row{{"short", false, "BelowStatutoryMinimum", []string{"rule short keeps P2Y", "Jeugdwet art. 7.3.8"}},
				{"right", true, "WithinStatutoryRange", []string{"rule right keeps P20Y"}},
				{"long", false, "BeyondStorageLimit", []string{"rule long keeps P30Y", "more than P25Y"}}}},
		{"no rules", nil, "NeighbourhoodTeam", DefaultStatutes, []row{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckRules(tc.rules, tc.service, tc.statutes)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d checks; want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Rule != w.rule || g.Pass != w.pass || g.Reason != w.reason {
					t.Errorf("check %d = %s pass=%v %s (%q); want %s pass=%v %s", i, g.Rule, g.Pass, g.Reason, g.Message, w.rule, w.pass, w.reason)
				}
				for _, s := range w.message {
					if !strings.Contains(g.Message, s) {
						t.Errorf("check %d message %q lacks %q", i, g.Message, s)
					}
				}
			}
		})
	}
}

func TestStatutoryControl(t *testing.T) {
	within := RuleCheck{Rule: "a", Pass: true, Reason: "WithinStatutoryRange", Message: "rule a keeps P5Y"}
	justified := RuleCheck{Rule: "b", Pass: true, Reason: "JustifiedException", Message: "rule b keeps P10Y; justified: court"}
	below := RuleCheck{Rule: "c", Reason: "BelowStatutoryMinimum", Message: "rule c keeps P1Y, shorter"}
	beyond := RuleCheck{Rule: "d", Reason: "BeyondStorageLimit", Message: "rule d keeps P30Y, longer"}
	cases := []struct {
		name   string
		checks []RuleCheck
		want   wantControl
	}{
		{"every rule within the range", []RuleCheck{within, within},
			wantControl{"StatutoryRetention", "Pass", "WithinStatutoryRange", []string{"all 2 rule(s) within the statutory range"},
				[]string{"rule a keeps P5Y", "rule a keeps P5Y"}}},
		{"a justified rule is named in the reason", []RuleCheck{within, justified},
			wantControl{"StatutoryRetention", "Pass", "JustifiedException", []string{"all 2 rule(s) within the statutory range or justified"},
				[]string{"rule a keeps P5Y", "rule b keeps P10Y; justified: court"}}},
		{"one failing rule fails the policy", []RuleCheck{within, below},
			wantControl{"StatutoryRetention", "Fail", "BelowStatutoryMinimum", []string{"rule c keeps P1Y, shorter"},
				[]string{"rule a keeps P5Y", "rule c keeps P1Y, shorter"}}},
		{"the first failure gives the reason; the message lists only failures", []RuleCheck{beyond, within, below},
			wantControl{"StatutoryRetention", "Fail", "BeyondStorageLimit", []string{"rule d keeps P30Y, longer; rule c keeps P1Y, shorter"},
				[]string{"rule d keeps P30Y, longer", "rule a keeps P5Y", "rule c keeps P1Y, shorter"}}},
		{"a failure beside a justification", []RuleCheck{justified, beyond},
			wantControl{"StatutoryRetention", "Fail", "BeyondStorageLimit", nil,
				[]string{"rule b keeps P10Y; justified: court", "rule d keeps P30Y, longer"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := StatutoryControl(tc.checks)
			assertControl(t, got, tc.want)
			if got.Result == "Fail" && strings.Contains(got.Message, "rule a keeps") {
				t.Errorf("the failure message %q names a rule that passed", got.Message)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	cases := []struct {
		name, spec, zone string
		next             time.Time // after testNow, 15 March 2026 12:00 UTC
		err              string
	}{
		{"daily in UTC by default", "0 3 * * *", "", time.Date(2026, 3, 16, 3, 0, 0, 0, time.UTC), ""},
		{"daily in Amsterdam (CET)", "0 3 * * *", "Europe/Amsterdam", time.Date(2026, 3, 16, 2, 0, 0, 0, time.UTC), ""},
		{"after the change to summer time (CEST)", "0 3 1 4 *", "Europe/Amsterdam", time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC), ""},
		{"descriptor", "@weekly", "", time.Date(2026, 3, 22, 0, 0, 0, 0, time.UTC), ""},
		{"unknown time zone", "0 3 * * *", "Mars/Olympus", time.Time{}, `spec.timeZone "Mars/Olympus" is not a known time zone`},
		{"not a cron schedule", "every night", "", time.Time{}, `spec.schedule "every night" is not a valid cron schedule`},
		{"six fields are not standard cron", "0 0 3 * * *", "", time.Time{}, `spec.schedule "0 0 3 * * *"`},
		{"empty schedule", "", "", time.Time{}, `spec.schedule ""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Schedule(tc.spec, tc.zone)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v; want one containing %q", err, tc.err)
				}
				// The error names the field, not the parser's own words.
				if strings.Contains(err.Error(), "unknown time zone") || strings.Contains(err.Error(), "expected") {
					t.Errorf("err %q passes a dependency's error on", err)
				}
				if s != nil {
					t.Errorf("a schedule came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(testNow); !got.Equal(tc.next) {
				t.Errorf("next run = %s; want %s", got.UTC(), tc.next)
			}
		})
	}
}

func TestEnforcementControl(t *testing.T) {
	daily, err := Schedule("0 3 * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	// Created on 10 March: the first run is due on 11 March 03:00, the
	// second on 12 March 03:00.
	created := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	ranAt := time.Date(2026, 3, 15, 3, 0, 5, 0, time.UTC)
	// A run at ranAt counts until two scheduled runs later plus an hour.
	lateAfter := time.Date(2026, 3, 17, 4, 0, 0, 0, time.UTC)
	run := func(result v1alpha1.RunResult, overdue int64, mutate ...func(*v1alpha1.RetentionRun)) *v1alpha1.RetentionRun {
		r := &v1alpha1.RetentionRun{StartTime: metav1.Time{Time: ranAt}, Result: result, Destroyed: 10, Anonymised: 2, Held: 1, Overdue: overdue}
		for _, m := range mutate {
			m(r)
		}
		return r
	}
	evidence := func(result string, overdue string) []string {
		return []string{"run at 2026-03-15T03:00:05Z: " + result + ", 10 destroyed, 2 anonymised, 1 held, " + overdue + " overdue"}
	}
	cases := []struct {
		name  string
		facts EnforcementFacts
		now   time.Time
		want  wantControl
	}{
		{"no schedule", EnforcementFacts{Created: created}, testNow,
			wantControl{"RetentionEnforced", "Fail", "InvalidSchedule", []string{"schedule cannot be parsed"}, nil}},
		{"awaiting the first run", EnforcementFacts{Schedule: daily, Created: created}, time.Date(2026, 3, 11, 2, 0, 0, 0, time.UTC),
			wantControl{"RetentionEnforced", "Unknown", "AwaitingFirstRun", []string{"no sweep has run yet; the first is due at 2026-03-11T03:00:00Z"}, nil}},
		{"first run late but the second not yet due", EnforcementFacts{Schedule: daily, Created: created}, time.Date(2026, 3, 12, 2, 59, 59, 0, time.UTC),
			wantControl{"RetentionEnforced", "Unknown", "AwaitingFirstRun", nil, nil}},
		{"no run when the second was due", EnforcementFacts{Schedule: daily, Created: created}, time.Date(2026, 3, 12, 3, 0, 0, 0, time.UTC),
			wantControl{"RetentionEnforced", "Fail", "RunMissed", []string{"no sweep has reported since the policy was created"}, nil}},
		{"successful run", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunSucceeded, 0)}, testNow,
			wantControl{"RetentionEnforced", "Pass", "RunSucceeded", []string{"the last sweep ran at 2026-03-15T03:00:05Z"}, evidence("Succeeded", "0")}},
		{"proof of destruction in the evidence", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunSucceeded, 0,
			func(r *v1alpha1.RetentionRun) { r.ProofDigest = "9f86d08" })}, testNow,
			wantControl{"RetentionEnforced", "Pass", "RunSucceeded", nil, append(evidence("Succeeded", "0"), "proof of destruction sha256:9f86d08")}},
		{"a run still counts one second before it is late", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunSucceeded, 0)}, lateAfter.Add(-time.Second),
			wantControl{"RetentionEnforced", "Pass", "RunSucceeded", nil, evidence("Succeeded", "0")}},
		{"last run too long ago", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunSucceeded, 0)}, lateAfter,
			wantControl{"RetentionEnforced", "Fail", "RunMissed", []string{"ran at 2026-03-15T03:00:05Z, more than two scheduled intervals ago"}, evidence("Succeeded", "0")}},
		{"failed run", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunFailed, 0)}, testNow,
			wantControl{"RetentionEnforced", "Fail", "RunFailed", []string{"the last sweep failed", "Job's log"}, evidence("Failed", "0")}},
		{"a failure is reported before lateness", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunFailed, 0)}, lateAfter,
			wantControl{"RetentionEnforced", "Fail", "RunFailed", nil, evidence("Failed", "0")}},
		{"interrupted run", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunInterrupted, 4)}, testNow,
			wantControl{"RetentionEnforced", "Fail", "RunInterrupted", []string{"interrupted", "maxRunTime"}, evidence("Interrupted", "4")}},
		{"overdue count unknown", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunSucceeded, -1)}, testNow,
			wantControl{"RetentionEnforced", "Unknown", "OverdueUnknown", []string{"could not count"}, evidence("Succeeded", "-1")}},
		{"dry run destroys nothing", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunDryRun, 7)}, testNow,
			wantControl{"RetentionEnforced", "Fail", "DryRunOnly", []string{"dry-run mode: 7 record(s) are due"}, evidence("DryRun", "7")}},
		{"dry run that could not count", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunDryRun, -1)}, testNow,
			wantControl{"RetentionEnforced", "Unknown", "OverdueUnknown", nil, evidence("DryRun", "-1")}},
		{"records left overdue", EnforcementFacts{Schedule: daily, Created: created, LastRun: run(v1alpha1.RunSucceeded, 5)}, testNow,
			wantControl{"RetentionEnforced", "Fail", "OverdueRecords", []string{"5 record(s) are still overdue"}, evidence("Succeeded", "5")}},
		{"overdue records at the tolerance", EnforcementFacts{Schedule: daily, Created: created, Tolerance: 5, LastRun: run(v1alpha1.RunSucceeded, 5)}, testNow,
			wantControl{"RetentionEnforced", "Pass", "RunSucceeded", nil, evidence("Succeeded", "5")}},
		{"one record above the tolerance", EnforcementFacts{Schedule: daily, Created: created, Tolerance: 5, LastRun: run(v1alpha1.RunSucceeded, 6)}, testNow,
			wantControl{"RetentionEnforced", "Fail", "OverdueRecords", []string{"6 record(s)"}, evidence("Succeeded", "6")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, EnforcementControl(tc.facts, tc.now), tc.want)
		})
	}
}

func TestPeriods(t *testing.T) {
	cases := []struct {
		rules []v1alpha1.RetentionRule
		want  string
	}{
		{nil, ""},
		{[]v1alpha1.RetentionRule{testRule("a", "P5Y", "")}, "P5Y"},
		{[]v1alpha1.RetentionRule{testRule("a", "P7Y", ""), testRule("b", "P5Y", ""), testRule("c", "P7Y", "")}, "P5Y,P7Y"},
		{[]v1alpha1.RetentionRule{testRule("a", "P5Y", ""), testRule("b", "P20Y", ""), testRule("c", "P30D", "")}, "P20Y,P30D,P5Y"},
	}
	for _, tc := range cases {
		if got := Periods(tc.rules); got != tc.want {
			t.Errorf("Periods(%v) = %q; want %q", tc.rules, got, tc.want)
		}
	}
}

func TestStoreRetentionControl(t *testing.T) {
	pass := RetentionOutcome{Name: "contacts", Result: "Pass", Reason: "RunSucceeded"}
	unknown := RetentionOutcome{Name: "new", Result: "Unknown", Reason: "AwaitingFirstRun"}
	fail := RetentionOutcome{Name: "plans", Result: "Fail", Reason: "RunMissed"}
	notOK := []string{"not every retention policy is lawful and enforced yet"}
	cases := []struct {
		name     string
		policies []RetentionOutcome
		want     wantControl
	}{
		{"no policies", nil, wantControl{"RetentionEnforced", "Fail", "NoRetentionPolicy", []string{"no RetentionPolicy destroys this store's dossiers"}, nil}},
		{"every policy enforced", []RetentionOutcome{pass, {Name: "plans", Result: "Pass", Reason: "RunSucceeded"}},
			wantControl{"RetentionEnforced", "Pass", "RunSucceeded", []string{"all 2 retention policy(ies)"},
				[]string{"RetentionPolicy/contacts: Pass (RunSucceeded)", "RetentionPolicy/plans: Pass (RunSucceeded)"}}},
		{"a policy awaiting its first run", []RetentionOutcome{pass, unknown},
			wantControl{"RetentionEnforced", "Unknown", "AwaitingFirstRun", notOK,
				[]string{"RetentionPolicy/contacts: Pass (RunSucceeded)", "RetentionPolicy/new: Unknown (AwaitingFirstRun)"}}},
		{"a failure outweighs an earlier unknown", []RetentionOutcome{unknown, fail},
			wantControl{"RetentionEnforced", "Fail", "RunMissed", notOK,
				[]string{"RetentionPolicy/new: Unknown (AwaitingFirstRun)", "RetentionPolicy/plans: Fail (RunMissed)"}}},
		{"a later unknown does not hide a failure", []RetentionOutcome{fail, unknown, pass},
			wantControl{"RetentionEnforced", "Fail", "RunMissed", notOK,
				[]string{"RetentionPolicy/plans: Fail (RunMissed)", "RetentionPolicy/new: Unknown (AwaitingFirstRun)", "RetentionPolicy/contacts: Pass (RunSucceeded)"}}},
		{"a pending policy is not enforced", []RetentionOutcome{{Name: "fresh", Result: "Unknown", Reason: "Pending"}},
			wantControl{"RetentionEnforced", "Unknown", "Pending", notOK, []string{"RetentionPolicy/fresh: Unknown (Pending)"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, StoreRetentionControl(tc.policies), tc.want)
		})
	}
}

func TestValidateStatutes(t *testing.T) {
	ok := Statute{Clock: v1alpha1.ClockLastContact, Minimum: "P5Y", Maximum: "P7Y", Source: "s"}
	with := func(mutate func(*Statute)) map[v1alpha1.Service]Statute {
		s := ok
		mutate(&s)
		return map[v1alpha1.Service]Statute{"NeighbourhoodTeam": s}
	}
	cases := []struct {
		name  string
		table map[v1alpha1.Service]Statute
		// err lists what the error must contain: the field and its value.
		err []string
	}{
		{"the built-in table", DefaultStatutes, nil},
		{"an empty table", nil, nil},
		{"minimum equal to maximum", with(func(s *Statute) { s.Maximum = "P5Y" }), nil},
		{"equal in other units", with(func(s *Statute) { s.Minimum, s.Maximum = "P60M", "P5Y" }), nil},
		{"every clock event", map[v1alpha1.Service]Statute{
			"NeighbourhoodTeam": ok, "YouthCare": {Clock: "EndOfHelp", Minimum: "P1Y", Maximum: "P2Y"},
			"VeiligThuis": {Clock: "Closure", Minimum: "P1Y", Maximum: "P2Y"}, "SocialSupport": {Clock: "Creation", Minimum: "P1Y", Maximum: "P2Y"}}, nil},
		{"unknown service", map[v1alpha1.Service]Statute{"Bakery": ok}, []string{"retention statutes:", `unknown service "Bakery"`}},
		{"unknown clock", with(func(s *Statute) { s.Clock = "Birthday" }),
			[]string{"NeighbourhoodTeam.clock", `"Birthday"`, "LastContact, EndOfHelp, Closure, Creation"}},
		{"missing clock", with(func(s *Statute) { s.Clock = "" }), []string{"NeighbourhoodTeam.clock", `""`}},
		{"missing minimum", with(func(s *Statute) { s.Minimum = "" }), []string{"NeighbourhoodTeam.minimum", `""`, "ISO 8601 period", "P20Y"}},
		{"zero maximum", with(func(s *Statute) { s.Maximum = "P0Y" }), []string{"NeighbourhoodTeam.maximum", `"P0Y"`, "ISO 8601 period"}},
		{"duration instead of a period", with(func(s *Statute) { s.Maximum = "PT5H" }), []string{"NeighbourhoodTeam.maximum", `"PT5H"`}},
		// A configured table is not checked by the API server's CEL rules:
		// only the API's own pattern, one positive unit, is accepted.
		{"lax period P5Y6M", with(func(s *Statute) { s.Minimum = `P5Y6M` }), []string{"NeighbourhoodTeam.minimum", `"P5Y6M"`, "ISO 8601 period"}},
		{"lax period P5Yx", with(func(s *Statute) { s.Minimum = `P5Yx` }), []string{"NeighbourhoodTeam.minimum", `"P5Yx"`, "ISO 8601 period"}},
		{"lax period P+5Y", with(func(s *Statute) { s.Minimum = `P+5Y` }), []string{"NeighbourhoodTeam.minimum", `"P+5Y"`, "ISO 8601 period"}},
		{"lax period P 5Y", with(func(s *Statute) { s.Minimum = `P 5Y` }), []string{"NeighbourhoodTeam.minimum", `"P 5Y"`, "ISO 8601 period"}},
		{"lax period P05Y", with(func(s *Statute) { s.Minimum = `P05Y` }), []string{"NeighbourhoodTeam.minimum", `"P05Y"`, "ISO 8601 period"}},
		{"lax period P10000D", with(func(s *Statute) { s.Minimum = `P10000D` }), []string{"NeighbourhoodTeam.minimum", `"P10000D"`, "ISO 8601 period"}},
		{"lax period p5y", with(func(s *Statute) { s.Minimum = `p5y` }), []string{"NeighbourhoodTeam.minimum", `"p5y"`, "ISO 8601 period"}},
		{"minimum above maximum", with(func(s *Statute) { s.Minimum = "P8Y" }), []string{"NeighbourhoodTeam.minimum P8Y is longer than its maximum P7Y"}},
		{"minimum one day above maximum", with(func(s *Statute) { s.Minimum, s.Maximum = "P29D", "P4W" }), []string{"NeighbourhoodTeam.minimum P29D is longer than its maximum P4W"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateStatutes(tc.table)
			if tc.err == nil {
				if err != nil {
					t.Errorf("err = %v; want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want one naming %q", tc.err)
			}
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err %q lacks %q", err, s)
				}
			}
		})
	}
}

// TestDefaultStatutes pins the built-in table: every service has a statute
// whose minimum and maximum are the documented ones.
func TestDefaultStatutes(t *testing.T) {
	want := map[string][3]string{
		"YouthAndFamilyCentre": {"EndOfHelp", "P20Y", "P25Y"},
		"YouthCare":            {"EndOfHelp", "P20Y", "P25Y"},
		"YouthProtection":      {"EndOfHelp", "P20Y", "P25Y"},
		"YouthProbation":       {"EndOfHelp", "P20Y", "P25Y"},
		"VeiligThuis":          {"Closure", "P20Y", "P25Y"},
		"NeighbourhoodTeam":    {"LastContact", "P5Y", "P7Y"},
		"SocialSupport":        {"EndOfHelp", "P5Y", "P7Y"},
	}
	var services []string
	for s, st := range DefaultStatutes {
		services = append(services, string(s))
		w, ok := want[string(s)]
		if !ok {
			t.Errorf("statute for %s, which this test does not know", s)
			continue
		}
		if got := [3]string{string(st.Clock), string(st.Minimum), string(st.Maximum)}; got != w {
			t.Errorf("%s = %v; want %v", s, got, w)
		}
		if st.Source == "" {
			t.Errorf("%s has no source", s)
		}
	}
	if len(services) != len(want) {
		slices.Sort(services)
		t.Errorf("services %v; want %d", services, len(want))
	}
}
