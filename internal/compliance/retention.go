package compliance

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlStatutoryRetention] = "AVG art. 5(1)(e); Jeugdwet art. 7.3.8; Archiefwet"
	References[v1alpha1.ControlRetentionEnforced] = "AVG art. 5(1)(e), art. 17; BIO 8.10"
}

// Statute is the retention a service must keep, from the privacy statements
// and the law behind them: how long at least (Minimum) and how long at most
// before it is "longer than needed" (Maximum), from which event.
type Statute struct {
	Clock   v1alpha1.ClockEvent `json:"clock"`
	Minimum v1alpha1.Period     `json:"minimum"`
	Maximum v1alpha1.Period     `json:"maximum"`
	Source  string              `json:"source"`
}

// DefaultStatutes is the built-in table; the operator's configuration (and
// the Helm chart's values) may replace it. docs/retention.md gives the
// sources; a municipality's privacy officer should confirm them.
var DefaultStatutes = map[v1alpha1.Service]Statute{
	v1alpha1.ServiceYouthAndFamilyCentre: {v1alpha1.ClockEndOfHelp, "P20Y", "P25Y", "Jeugdwet art. 7.3.8: 20 years after the help ended"},
	v1alpha1.ServiceYouthCare:            {v1alpha1.ClockEndOfHelp, "P20Y", "P25Y", "Jeugdwet art. 7.3.8: 20 years after the help ended"},
	v1alpha1.ServiceYouthProtection:      {v1alpha1.ClockEndOfHelp, "P20Y", "P25Y", "Jeugdwet art. 7.3.8: 20 years after the measure ended"},
	v1alpha1.ServiceYouthProbation:       {v1alpha1.ClockEndOfHelp, "P20Y", "P25Y", "Jeugdwet art. 7.3.8: 20 years after the measure ended"},
	v1alpha1.ServiceVeiligThuis:          {v1alpha1.ClockClosure, "P20Y", "P25Y", "Wmo 2015 and the Veilig Thuis privacy statements: 20 years after the file was closed"},
	v1alpha1.ServiceNeighbourhoodTeam:    {v1alpha1.ClockLastContact, "P5Y", "P7Y", "privacy statements of the neighbourhood teams, Selectielijst gemeenten: 5 years after the last contact"},
	v1alpha1.ServiceSocialSupport:        {v1alpha1.ClockEndOfHelp, "P5Y", "P7Y", "Wmo 2015 practice, Selectielijst gemeenten: 5 years after the support ended"},
}

// RuleCheck is the statutory check of one rule.
type RuleCheck struct {
	Rule    string
	Pass    bool
	Reason  string
	Message string
}

// CheckRules compares every rule's period with the statute of the store's
// service. A period outside the range fails unless the rule carries a
// justification.
func CheckRules(rules []v1alpha1.RetentionRule, service v1alpha1.Service, statutes map[v1alpha1.Service]Statute) []RuleCheck {
	statute, ok := statutes[service]
	out := make([]RuleCheck, 0, len(rules))
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range rules {
		c := RuleCheck{Rule: r.Name, Pass: true}
		period, err := r.Period.AddTo(ref)
		if err != nil { // refused at admission; counts as no retention at all
			period = ref
		}
		switch {
		case !ok:
			c.Reason, c.Message = v1alpha1.ReasonNoStatute, fmt.Sprintf("rule %s: no statutory retention is configured for service %s", r.Name, service)
			c.Pass = false
		case period.Before(AddPeriod(ref, statute.Minimum)):
			c.Reason, c.Message = v1alpha1.ReasonBelowMinimum, fmt.Sprintf("rule %s keeps %s, shorter than the statutory %s (%s)", r.Name, r.Period, statute.Minimum, statute.Source)
			c.Pass = false
		case period.After(AddPeriod(ref, statute.Maximum)):
			c.Reason, c.Message = v1alpha1.ReasonBeyondMaximum, fmt.Sprintf("rule %s keeps %s, longer than needed (more than %s; %s)", r.Name, r.Period, statute.Maximum, statute.Source)
			c.Pass = false
		default:
			c.Reason, c.Message = v1alpha1.ReasonWithinStatute, fmt.Sprintf("rule %s keeps %s after %s (%s)", r.Name, r.Period, r.Clock.Event, statute.Source)
		}
		if !c.Pass && ok && strings.TrimSpace(r.Justification) != "" {
			c.Pass, c.Reason = true, v1alpha1.ReasonJustified
			c.Message += "; justified: " + r.Justification
		}
		out = append(out, c)
	}
	return out
}

// StatutoryControl summarises the rule checks.
func StatutoryControl(checks []RuleCheck) v1alpha1.ComplianceControl {
	var failed []string
	evidence := make([]string, 0, len(checks))
	for _, c := range checks {
		evidence = append(evidence, c.Message)
		if !c.Pass {
			failed = append(failed, c.Message)
		}
	}
	if len(failed) > 0 {
		return control(v1alpha1.ControlStatutoryRetention, v1alpha1.ResultFail, checksReason(checks), strings.Join(failed, "; "), evidence...)
	}
	reason, msg := v1alpha1.ReasonWithinStatute, fmt.Sprintf("all %d rule(s) within the statutory range", len(checks))
	for _, c := range checks {
		if c.Reason == v1alpha1.ReasonJustified {
			reason, msg = v1alpha1.ReasonJustified, fmt.Sprintf("all %d rule(s) within the statutory range or justified", len(checks))
		}
	}
	return control(v1alpha1.ControlStatutoryRetention, v1alpha1.ResultPass, reason, msg, evidence...)
}

func checksReason(checks []RuleCheck) string {
	for _, c := range checks {
		if !c.Pass {
			return c.Reason
		}
	}
	return v1alpha1.ReasonWithinStatute
}

// Schedule parses a cron schedule in a time zone, as the CronJob controller does.
func Schedule(spec, timeZone string) (cron.Schedule, error) {
	loc := time.UTC
	if timeZone != "" {
		l, err := time.LoadLocation(timeZone)
		if err != nil {
			return nil, fmt.Errorf("spec.timeZone %q is not a known time zone", timeZone)
		}
		loc = l
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("spec.schedule %q is not a valid cron schedule", spec)
	}
	if sched, ok := s.(*cron.SpecSchedule); ok {
		sched.Location = loc
	}
	return s, nil
}

// EnforcementFacts describe the sweeps of a policy.
type EnforcementFacts struct {
	Schedule cron.Schedule
	Created  time.Time
	LastRun  *v1alpha1.RetentionRun
	// Tolerance is the number of records that may stay overdue after a run.
	Tolerance int64
}

// EnforcementControl passes when a successful sweep ran within two schedule
// intervals and left no more than the tolerance overdue. Before the first
// run is due it is Unknown.
func EnforcementControl(f EnforcementFacts, now time.Time) v1alpha1.ComplianceControl {
	if f.Schedule == nil {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonInvalidSchedule, "the schedule cannot be parsed")
	}
	// Two intervals back from now: the latest moment a run counts.
	first := f.Schedule.Next(f.Created)
	second := f.Schedule.Next(first)
	if f.LastRun == nil {
		if now.Before(second) {
			return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultUnknown, v1alpha1.ReasonAwaitingFirstRun,
				"no sweep has run yet; the first is due at "+stamp(first))
		}
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonRunMissed,
			"no sweep has reported since the policy was created, although two were due")
	}
	run := f.LastRun
	evidence := []string{fmt.Sprintf("run at %s: %s, %d destroyed, %d anonymised, %d held, %d overdue", stamp(run.StartTime.Time), run.Result, run.Destroyed, run.Anonymised, run.Held, run.Overdue)}
	if run.ProofDigest != "" {
		evidence = append(evidence, "proof of destruction sha256:"+run.ProofDigest)
	}
	if run.Result == v1alpha1.RunFailed {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonRunFailed, "the last sweep failed; see its Job's log", evidence...)
	}
	if next := f.Schedule.Next(f.Schedule.Next(run.StartTime.Time)); !now.Before(next.Add(time.Hour)) {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonRunMissed,
			"the last sweep ran at "+stamp(run.StartTime.Time)+", more than two scheduled intervals ago", evidence...)
	}
	if run.Result == v1alpha1.RunInterrupted {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonRunInterrupted,
			"the last sweep was interrupted (SIGTERM or maxRunTime) before it finished; the next run continues", evidence...)
	}
	if run.Overdue < 0 {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultUnknown, v1alpha1.ReasonOverdueUnknown,
			"the last sweep could not count what is still overdue", evidence...)
	}
	if run.Result == v1alpha1.RunDryRun {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonDryRunOnly,
			fmt.Sprintf("the policy runs in dry-run mode: %d record(s) are due and nothing is destroyed", run.Overdue), evidence...)
	}
	if run.Overdue > f.Tolerance {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonOverdueRecords,
			fmt.Sprintf("%d record(s) are still overdue after the last sweep", run.Overdue), evidence...)
	}
	return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultPass, v1alpha1.ReasonRunSucceeded,
		fmt.Sprintf("the last sweep ran at %s and left nothing overdue", stamp(run.StartTime.Time)), evidence...)
}

// Periods summarises the rules' periods for a printer column.
func Periods(rules []v1alpha1.RetentionRule) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		if !seen[string(r.Period)] {
			seen[string(r.Period)] = true
			out = append(out, string(r.Period))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// RetentionOutcome is what a store knows of one of its retention policies.
type RetentionOutcome struct {
	Name   string
	Result v1alpha1.ComplianceResult
	Reason string
}

// StoreRetentionControl passes when the store has retention policies and
// every one is lawful and enforced.
func StoreRetentionControl(policies []RetentionOutcome) v1alpha1.ComplianceControl {
	if len(policies) == 0 {
		return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultFail, v1alpha1.ReasonNoRetentionPolicies,
			"no RetentionPolicy destroys this store's dossiers when their retention ends")
	}
	evidence := make([]string, 0, len(policies))
	result, reason := v1alpha1.ResultPass, v1alpha1.ReasonRunSucceeded
	for _, p := range policies {
		evidence = append(evidence, fmt.Sprintf("RetentionPolicy/%s: %s (%s)", p.Name, p.Result, p.Reason))
		switch {
		case p.Result == v1alpha1.ResultFail:
			result, reason = v1alpha1.ResultFail, p.Reason
		case p.Result == v1alpha1.ResultUnknown && result == v1alpha1.ResultPass:
			result, reason = v1alpha1.ResultUnknown, p.Reason
		}
	}
	msg := fmt.Sprintf("all %d retention policy(ies) are lawful and enforced", len(policies))
	if result != v1alpha1.ResultPass {
		msg = "not every retention policy is lawful and enforced yet; see the evidence"
	}
	return control(v1alpha1.ControlRetentionEnforced, result, reason, msg, evidence...)
}

// RetentionNotListedControl is the store's retention control when its
// retention policies could not be read: Unknown, never a pass.
func RetentionNotListedControl() v1alpha1.ComplianceControl {
	return control(v1alpha1.ControlRetentionEnforced, v1alpha1.ResultUnknown, v1alpha1.ReasonRetentionPoliciesNotListed,
		"the store's retention policies could not be read")
}

// ValidateStatutes checks a configured table: known services and clocks,
// periods in the API's format, minimum not above maximum.
func ValidateStatutes(table map[v1alpha1.Service]Statute) error {
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	known := map[v1alpha1.Service]bool{}
	for s := range DefaultStatutes {
		known[s] = true
	}
	for service, s := range table {
		if !known[service] {
			return fmt.Errorf("retention statutes: unknown service %q", service)
		}
		switch s.Clock {
		case v1alpha1.ClockLastContact, v1alpha1.ClockEndOfHelp, v1alpha1.ClockClosure, v1alpha1.ClockCreation:
		default:
			return fmt.Errorf("retention statutes: %s.clock %q is not one of LastContact, EndOfHelp, Closure, Creation", service, s.Clock)
		}
		for field, p := range map[string]v1alpha1.Period{"minimum": s.Minimum, "maximum": s.Maximum} {
			if _, _, _, err := p.Parse(); err != nil {
				return fmt.Errorf("retention statutes: %s.%s %w", service, field, err)
			}
		}
		if AddPeriod(ref, s.Minimum).After(AddPeriod(ref, s.Maximum)) {
			return fmt.Errorf("retention statutes: %s.minimum %s is longer than its maximum %s", service, s.Minimum, s.Maximum)
		}
	}
	return nil
}
