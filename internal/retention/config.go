package retention

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Defaults, the same as the API's.
const (
	DefaultBatchSize    = 500
	DefaultMaxRunTime   = time.Hour
	DefaultTimeZone     = "Europe/Amsterdam"
	DefaultBatchTimeout = 2 * time.Minute
	// MaxBatchSize is the API's maximum of spec.batchSize.
	MaxBatchSize = 10000
)

// DefaultLockWait is how long a batch waits for a row that another
// transaction holds locked before it runs again with FOR UPDATE SKIP LOCKED,
// which skips the locked rows: while it waits, the batch holds the locks of
// the rows it has already changed.
const DefaultLockWait = 50 * time.Millisecond

// Config is what one sweep does. Build it with ConfigFromSpec, or directly
// in tests and tools.
type Config struct {
	// Rules to apply, in order.
	Rules []v1alpha1.RetentionRule
	// BatchSize is the most records a batch transaction changes (unless
	// records share a key), and the fewest keys it examines unless it is
	// the last; 0 means DefaultBatchSize.
	BatchSize int
	// DryRun counts what is due without changing anything.
	DryRun bool
	// MaxRunTime bounds the sweep: no batch starts after it has passed.
	// 0 means no bound.
	MaxRunTime time.Duration
	// Now is the clock; nil means time.Now. It is read once per sweep. Date
	// and timestamp-without-time-zone columns are compared in the location
	// of the time it returns.
	Now func() time.Time
	// BatchTimeout bounds one batch transaction (and one count); 0 means
	// DefaultBatchTimeout. A batch that takes longer is rolled back and the
	// sweep fails.
	BatchTimeout time.Duration
	// Decisions reads the granted retention extensions (RetentionExtension
	// requests) in effect at the sweep's now, once per sweep; nil means
	// there are none. A sweep whose Decisions fails destroys nothing: it
	// reports Failed, as destroying a record the family asked to keep
	// would be in their disfavour. Rules with a dossier column keep the
	// records of the extended dossiers; rules without one cannot tell
	// dossiers apart and are swept as usual.
	Decisions func(ctx context.Context, now time.Time) (Kept, error)

	// Test hooks. batchDelay sleeps inside every batch transaction, after
	// its statement and before its commit; afterBatch runs at the same
	// point with the rule's index and the batch number (from 1).
	batchDelay time.Duration
	afterBatch func(rule, batch int)
	// lockWait bounds how long a batch waits for a row that another
	// transaction holds locked before it runs again with FOR UPDATE SKIP
	// LOCKED; 0 means DefaultLockWait.
	lockWait time.Duration
}

// ConfigFromSpec builds the Config of a RetentionPolicy's spec, applying the
// API's defaults. It checks what the API server checks at admission, so
// that a sweeper run outside Kubernetes is as safe, and names the field of
// each problem ("spec.rules[0].period: ..."). Now is the wall clock in the
// policy's time zone (spec.timeZone, Europe/Amsterdam by default).
func ConfigFromSpec(spec v1alpha1.RetentionPolicySpec) (Config, error) {
	var errs []error
	cfg := Config{
		Rules:        spec.Rules,
		BatchSize:    int(spec.BatchSize),
		DryRun:       spec.DryRun,
		MaxRunTime:   DefaultMaxRunTime,
		BatchTimeout: DefaultBatchTimeout,
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("spec.batchSize: must be between 1 and %d, got %d", MaxBatchSize, spec.BatchSize))
	}
	if spec.MaxRunTime != "" {
		d, err := time.ParseDuration(spec.MaxRunTime)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("spec.maxRunTime: must be a duration such as 1h, got %q", spec.MaxRunTime))
		case d < time.Minute || d > 24*time.Hour:
			errs = append(errs, fmt.Errorf("spec.maxRunTime: must be between 1m and 24h, got %s", spec.MaxRunTime))
		default:
			cfg.MaxRunTime = d
		}
	}
	tz := spec.TimeZone
	if tz == "" {
		tz = DefaultTimeZone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		errs = append(errs, fmt.Errorf("spec.timeZone: unknown time zone %q", tz))
	} else {
		cfg.Now = func() time.Time { return time.Now().In(loc) }
	}
	errs = append(errs, validateRules("spec.rules", spec.Rules, true)...)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// withDefaults fills in the zero fields and checks the config; field paths
// in its errors are those of Config ("rules[0].period").
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("batchSize: must be between 1 and %d, got %d", MaxBatchSize, c.BatchSize))
	}
	if c.MaxRunTime < 0 {
		errs = append(errs, fmt.Errorf("maxRunTime: must not be negative, got %s", c.MaxRunTime))
	}
	if c.lockWait == 0 {
		c.lockWait = DefaultLockWait
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.BatchTimeout < 0 {
		errs = append(errs, fmt.Errorf("batchTimeout: must not be negative, got %s", c.BatchTimeout))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	errs = append(errs, validateRules("rules", c.Rules, false)...)
	return c, errors.Join(errs...)
}

var (
	// The API's patterns (see api/v1alpha1).
	identifierPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	tablePattern      = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}([.][a-z_][a-z0-9_]{0,62})?$`)
	ruleNamePattern   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// validateRules checks the rules. strict applies the API's patterns to names;
// otherwise any name PostgreSQL accepts is allowed, as the sweeper quotes
// every identifier.
func validateRules(path string, rules []v1alpha1.RetentionRule, strict bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(rules) == 0 {
		add(path, "at least one rule is required")
	}
	if len(rules) > 50 {
		add(path, "at most 50 rules are allowed, got %d", len(rules))
	}
	names := map[string]int{}
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case r.Name == "":
			add(p+".name", "is required")
		case len(r.Name) > 63 || !ruleNamePattern.MatchString(r.Name):
			add(p+".name", "must be lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters, got %q", r.Name)
		}
		if j, dup := names[r.Name]; dup && r.Name != "" {
			add(p+".name", "duplicates %s[%d].name %q", path, j, r.Name)
		} else {
			names[r.Name] = i
		}
		validateRule(p, r, strict, add)
	}
	return errs
}

// addFunc reports that field breaks a rule.
type addFunc func(field, format string, args ...any)

// validateRule checks one rule's table, columns, clock, period and action;
// p is its path, such as spec.rules[0].
func validateRule(p string, r v1alpha1.RetentionRule, strict bool, add addFunc) {
	ident := func(field string, v v1alpha1.SQLIdentifier, required bool) {
		checkIdentifier(p+"."+field, v, required, strict, add)
	}
	if msg := checkTable(string(r.Table), strict); msg != "" {
		add(p+".table", "%s", msg)
	}
	ident("idColumn", r.IDColumn, false)
	ident("dossierColumn", r.DossierColumn, false)
	switch r.Clock.Event {
	case v1alpha1.ClockLastContact, v1alpha1.ClockEndOfHelp, v1alpha1.ClockClosure, v1alpha1.ClockCreation:
	default:
		add(p+".clock.event", "must be one of LastContact, EndOfHelp, Closure, Creation, got %q", string(r.Clock.Event))
	}
	ident("clock.column", r.Clock.Column, true)
	if _, _, _, err := r.Period.Parse(); err != nil {
		add(p+".period", "%v", err)
	} else if r.Period == v1alpha1.EndOfInvolvement && r.Clock.Event != v1alpha1.ClockEndOfHelp && r.Clock.Event != v1alpha1.ClockClosure {
		add(p+".period", "P0D (destroy at the end of the involvement) needs clock.event EndOfHelp or Closure, got %q", string(r.Clock.Event))
	}
	ident("legalHoldColumn", r.LegalHoldColumn, false)
	ident("extensionColumn", r.ExtensionColumn, false)
	validateAnonymise(p, r, strict, add)
}

// validateAnonymise checks the action and the columns it anonymises.
func validateAnonymise(p string, r v1alpha1.RetentionRule, strict bool, add addFunc) {
	switch r.Action {
	case "", v1alpha1.ActionDelete:
		if len(r.AnonymiseColumns) > 0 {
			add(p+".anonymiseColumns", "is only allowed when action is Anonymise")
		}
	case v1alpha1.ActionAnonymise:
		if len(r.AnonymiseColumns) == 0 {
			add(p+".anonymiseColumns", "must list at least one column when action is Anonymise")
		}
	default:
		add(p+".action", "must be Delete or Anonymise, got %q", string(r.Action))
	}
	if len(r.AnonymiseColumns) > 50 {
		add(p+".anonymiseColumns", "at most 50 columns are allowed, got %d", len(r.AnonymiseColumns))
	}
	seen := map[v1alpha1.SQLIdentifier]bool{}
	for j, c := range r.AnonymiseColumns {
		f := fmt.Sprintf("%s.anonymiseColumns[%d]", p, j)
		checkIdentifier(f, c, true, strict, add)
		switch {
		case c == idColumn(r):
			add(f, "must not be the idColumn %q", string(c))
		case c == r.Clock.Column:
			add(f, "must not be the clock column %q", string(c))
		case seen[c]:
			add(f, "duplicate column %q", string(c))
		}
		seen[c] = true
	}
}

// checkIdentifier checks the SQL identifier v of field.
func checkIdentifier(field string, v v1alpha1.SQLIdentifier, required, strict bool, add addFunc) {
	switch {
	case v == "" && required:
		add(field, "is required")
	case v == "":
	case !validIdentifier(string(v), strict):
		add(field, "%s, got %q", identifierRule(strict), string(v))
	}
}

func identifierRule(strict bool) string {
	if strict {
		return "must be a plain SQL identifier: lower-case letters, digits and underscores, starting with a letter or underscore, at most 63 characters"
	}
	return "must be a non-empty SQL identifier of at most 63 bytes without NUL"
}

func validIdentifier(s string, strict bool) bool {
	if strict {
		return len(s) <= 63 && identifierPattern.MatchString(s)
	}
	return s != "" && len(s) <= 63 && !strings.ContainsRune(s, 0)
}

// checkTable returns what is wrong with a table name, or "".
func checkTable(t string, strict bool) string {
	if t == "" {
		return "is required"
	}
	if strict {
		if len(t) > 127 || !tablePattern.MatchString(t) {
			return fmt.Sprintf("must be a plain SQL table name, optionally schema-qualified (schema.table): lower-case letters, digits and underscores, each part at most 63 characters, got %q", t)
		}
		return ""
	}
	parts := strings.Split(t, ".")
	if len(parts) > 2 {
		return fmt.Sprintf("must be table or schema.table (one dot at most), got %q", t)
	}
	for _, part := range parts {
		if !validIdentifier(part, false) {
			return fmt.Sprintf("each part %s, got %q", identifierRule(false), t)
		}
	}
	return ""
}

// idColumn is the rule's key column, id by default.
func idColumn(r v1alpha1.RetentionRule) v1alpha1.SQLIdentifier {
	if r.IDColumn == "" {
		return "id"
	}
	return r.IDColumn
}

// action is the rule's action, Delete by default.
func action(r v1alpha1.RetentionRule) v1alpha1.RetentionAction {
	if r.Action == "" {
		return v1alpha1.ActionDelete
	}
	return r.Action
}
