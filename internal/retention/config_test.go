package retention

import (
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func validSpec() v1alpha1.RetentionPolicySpec {
	return v1alpha1.RetentionPolicySpec{
		StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"},
		Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"},
		Schedule: "0 3 * * *",
		Rules: []v1alpha1.RetentionRule{{
			Name:            "wijkteamdossiers",
			Table:           "dossiers",
			Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact_at"},
			Period:          "P5Y",
			LegalHoldColumn: "legal_hold",
			ExtensionColumn: "retain_until",
		}, {
			Name:             "contacts",
			Table:            "crm.contacts",
			IDColumn:         "contact_id",
			Clock:            v1alpha1.RetentionClock{Event: v1alpha1.ClockEndOfHelp, Column: "ended_at"},
			Period:           "P6M",
			Action:           v1alpha1.ActionAnonymise,
			AnonymiseColumns: []v1alpha1.SQLIdentifier{"name", "phone"},
		}},
	}
}

func TestConfigFromSpecDefaults(t *testing.T) {
	cfg, err := ConfigFromSpec(validSpec())
	if err != nil {
		t.Fatalf("ConfigFromSpec: %v", err)
	}
	if cfg.BatchSize != DefaultBatchSize || cfg.MaxRunTime != time.Hour || cfg.DryRun || cfg.BatchTimeout != DefaultBatchTimeout {
		t.Errorf("defaults: batchSize %d, maxRunTime %s, dryRun %v, batchTimeout %s", cfg.BatchSize, cfg.MaxRunTime, cfg.DryRun, cfg.BatchTimeout)
	}
	if len(cfg.Rules) != 2 {
		t.Fatalf("rules: %d", len(cfg.Rules))
	}
	if got := cfg.Now().Location().String(); got != "Europe/Amsterdam" {
		t.Errorf("Now is in %s; want Europe/Amsterdam", got)
	}
	if d := time.Since(cfg.Now()); d < 0 || d > time.Minute {
		t.Errorf("Now is not the wall clock: %s off", d)
	}

	spec := validSpec()
	spec.BatchSize, spec.MaxRunTime, spec.DryRun, spec.TimeZone = 2000, "90m", true, "UTC"
	cfg, err = ConfigFromSpec(spec)
	if err != nil {
		t.Fatalf("ConfigFromSpec: %v", err)
	}
	if cfg.BatchSize != 2000 || cfg.MaxRunTime != 90*time.Minute || !cfg.DryRun || cfg.Now().Location() != time.UTC {
		t.Errorf("got batchSize %d, maxRunTime %s, dryRun %v, location %s", cfg.BatchSize, cfg.MaxRunTime, cfg.DryRun, cfg.Now().Location())
	}
}

func TestConfigFromSpecErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.RetentionPolicySpec)
		want   []string // every one must be in the error
	}{
		{"no rules", func(s *v1alpha1.RetentionPolicySpec) { s.Rules = nil }, []string{"spec.rules: at least one rule is required"}},
		{"bad period", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Period = "P5" },
			[]string{`spec.rules[0].period: must be P0D (at the end of the involvement) or an ISO 8601 period with one positive unit, such as P20Y, P6M, P4W or P30D, got "P5"`}},
		{"P0D after the last contact", func(s *v1alpha1.RetentionPolicySpec) {
			s.Rules[0].Period, s.Rules[0].Clock.Event = "P0D", v1alpha1.ClockLastContact
		}, []string{`spec.rules[0].period: P0D (destroy at the end of the involvement) needs clock.event EndOfHelp or Closure, got "LastContact"`}},
		{"P0D after creation", func(s *v1alpha1.RetentionPolicySpec) {
			s.Rules[0].Period, s.Rules[0].Clock.Event = "P0D", v1alpha1.ClockCreation
		}, []string{`spec.rules[0].period: P0D`, `got "Creation"`}},
		{"zero years", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Period = "P0Y" }, []string{`spec.rules[0].period: must be P0D`, `got "P0Y"`}},
		{"two-unit period", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[1].Period = "P1Y6M" }, []string{"spec.rules[1].period:"}},
		{"injected table", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Table = "dossiers; DROP TABLE clients" },
			[]string{`spec.rules[0].table: must be a plain SQL table name, optionally schema-qualified`, `"dossiers; DROP TABLE clients"`}},
		{"three-part table", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Table = "a.b.c" }, []string{"spec.rules[0].table:"}},
		{"no table", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Table = "" }, []string{"spec.rules[0].table: is required"}},
		{"quoted column", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Clock.Column = `x" OR 1=1 --` },
			[]string{"spec.rules[0].clock.column: must be a plain SQL identifier"}},
		{"no clock column", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Clock.Column = "" }, []string{"spec.rules[0].clock.column: is required"}},
		{"bad clock event", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Clock.Event = "Birthday" }, []string{"spec.rules[0].clock.event: must be one of"}},
		{"upper-case hold column", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].LegalHoldColumn = "LegalHold" }, []string{"spec.rules[0].legalHoldColumn: must be a plain SQL identifier"}},
		{"bad extension column", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].ExtensionColumn = "retain until" }, []string{"spec.rules[0].extensionColumn:"}},
		{"bad id column", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[1].IDColumn = "1id" }, []string{"spec.rules[1].idColumn:"}},
		{"duplicate rule", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[1].Name = s.Rules[0].Name },
			[]string{`spec.rules[1].name: duplicates spec.rules[0].name "wijkteamdossiers"`}},
		{"bad rule name", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Name = "Wijk_Team" }, []string{"spec.rules[0].name: must be lower-case"}},
		{"bad action", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].Action = "Shred" }, []string{`spec.rules[0].action: must be Delete or Anonymise, got "Shred"`}},
		{"anonymise without columns", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[1].AnonymiseColumns = nil },
			[]string{"spec.rules[1].anonymiseColumns: must list at least one column when action is Anonymise"}},
		{"columns without anonymise", func(s *v1alpha1.RetentionPolicySpec) { s.Rules[0].AnonymiseColumns = []v1alpha1.SQLIdentifier{"name"} },
			[]string{"spec.rules[0].anonymiseColumns: is only allowed when action is Anonymise"}},
		{"anonymise the id", func(s *v1alpha1.RetentionPolicySpec) {
			s.Rules[1].AnonymiseColumns = []v1alpha1.SQLIdentifier{"name", "contact_id"}
		},
			[]string{`spec.rules[1].anonymiseColumns[1]: must not be the idColumn "contact_id"`}},
		{"anonymise the clock", func(s *v1alpha1.RetentionPolicySpec) {
			s.Rules[1].AnonymiseColumns = []v1alpha1.SQLIdentifier{"ended_at"}
		},
			[]string{`spec.rules[1].anonymiseColumns[0]: must not be the clock column "ended_at"`}},
		{"duplicate anonymise column", func(s *v1alpha1.RetentionPolicySpec) {
			s.Rules[1].AnonymiseColumns = []v1alpha1.SQLIdentifier{"name", "name"}
		},
			[]string{`spec.rules[1].anonymiseColumns[1]: duplicate column "name"`}},
		{"batch size too big", func(s *v1alpha1.RetentionPolicySpec) { s.BatchSize = 10001 }, []string{"spec.batchSize: must be between 1 and 10000, got 10001"}},
		{"negative batch size", func(s *v1alpha1.RetentionPolicySpec) { s.BatchSize = -1 }, []string{"spec.batchSize:"}},
		{"bad maxRunTime", func(s *v1alpha1.RetentionPolicySpec) { s.MaxRunTime = "an hour" }, []string{`spec.maxRunTime: must be a duration such as 1h, got "an hour"`}},
		{"short maxRunTime", func(s *v1alpha1.RetentionPolicySpec) { s.MaxRunTime = "30s" }, []string{"spec.maxRunTime: must be between 1m and 24h, got 30s"}},
		{"bad time zone", func(s *v1alpha1.RetentionPolicySpec) { s.TimeZone = "Europe/Atlantis" }, []string{`spec.timeZone: unknown time zone "Europe/Atlantis"`}},
		{"two problems at once", func(s *v1alpha1.RetentionPolicySpec) {
			s.Rules[0].Period = "20Y"
			s.BatchSize = 0
			s.Rules[1].Table = "X"
		},
			[]string{"spec.rules[0].period:", "spec.rules[1].table:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := validSpec()
			tt.mutate(&spec)
			_, err := ConfigFromSpec(spec)
			if err == nil {
				t.Fatal("ConfigFromSpec: no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestRunRejectsInvalidConfig: Run checks a Config built by hand too, and
// names the field.
func TestRunRejectsInvalidConfig(t *testing.T) {
	rule := dossierRule("x.dossiers")
	rule.Period = "P5"
	rep, err := Run(t.Context(), nil, Config{Rules: []v1alpha1.RetentionRule{rule}, BatchSize: 20000})
	if err == nil {
		t.Fatal("Run: no error")
	}
	for _, w := range []string{"rules[0].period: must be P0D (at the end of the involvement) or an ISO 8601 period", "batchSize: must be between 1 and 10000, got 20000"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if rep.Result != v1alpha1.RunFailed {
		t.Errorf("result %s; want Failed", rep.Result)
	}
}
