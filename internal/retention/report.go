package retention

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Unknown is the value of a count that was not taken: the held and overdue
// counts of a rule after the sweep was cancelled or ran out of time, or
// whose count failed.
const Unknown int64 = -1

// Report is the proof of destruction (verklaring van vernietiging) of one
// sweep. It holds counts, rule and table names, cutoffs and hashed record
// ids: no personal data, no raw ids, no DSNs and no driver messages.
type Report struct {
	// Start and End of the sweep, wall clock, UTC.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// AsOf is the sweep's "now" (Config.Now), from which cutoffs run.
	AsOf time.Time `json:"asOf"`
	// Result of the sweep.
	Result v1alpha1.RunResult `json:"result"`
	// Message explains an interrupted or failed sweep in plain words.
	Message string `json:"message,omitempty"`
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dryRun"`
	// BatchSize is the most records a batch transaction changes.
	BatchSize int `json:"batchSize"`
	// LongestBatch is the longest time a batch transaction was open, from
	// BEGIN to the end of COMMIT.
	LongestBatch time.Duration `json:"longestBatchNanos"`
	// BatchTime is the time all batch transactions were open together.
	BatchTime time.Duration `json:"batchTimeNanos"`
	// ExtensionsInEffect is the number of retention extension decisions
	// the sweep honoured (Config.Decisions).
	ExtensionsInEffect int `json:"extensionsInEffect"`
	// Rules, in the order of the config.
	Rules []RuleReport `json:"rules"`
}

// RuleReport is what one rule did.
type RuleReport struct {
	Rule   string                   `json:"rule"`
	Table  string                   `json:"table"`
	Action v1alpha1.RetentionAction `json:"action"`
	Period v1alpha1.RetentionPeriod `json:"period"`
	// Cutoff is AsOf minus Period: records whose clock is before it are due.
	Cutoff time.Time `json:"cutoff"`
	// Batches committed, one per range of keys.
	Batches int `json:"batches"`
	// Destroyed and Anonymised records.
	Destroyed  int64 `json:"destroyed"`
	Anonymised int64 `json:"anonymised"`
	// Held is the number of records due by their clock but under legal
	// hold or extension after the sweep; Unknown when not counted.
	Held int64 `json:"held"`
	// Overdue is the number of records still due after the sweep; Unknown
	// when not counted.
	Overdue int64 `json:"overdue"`
	// NoClock is the number of records whose clock column is empty, which
	// no period makes due (the involvement has not ended, or the date was
	// never filled in); Unknown when not counted.
	NoClock int64 `json:"noClock"`
	// KeptByExtension is the number of records due by their clock whose
	// dossier a retention extension decision keeps (they are in Held too);
	// Unknown when not counted.
	KeptByExtension int64 `json:"keptByExtension"`
	// WouldDestroy and WouldAnonymise are what a dry run found due.
	WouldDestroy   int64 `json:"wouldDestroy,omitempty"`
	WouldAnonymise int64 `json:"wouldAnonymise,omitempty"`
	// Error says what failed, without driver messages (an SQLSTATE at most).
	Error string `json:"error,omitempty"`
	// RecordHashes are the hex SHA-256 of "<table>:<id>" of every destroyed
	// or anonymised record, in the order they were processed; <table> is
	// the rule's table as written and <id> the key as PostgreSQL prints it.
	RecordHashes []string `json:"recordHashes"`
}

// RecordHash is the hex SHA-256 of "<table>:<id>", how a destroyed record
// appears in the report.
func RecordHash(table, id string) string {
	sum := sha256.Sum256([]byte(table + ":" + id))
	return hex.EncodeToString(sum[:])
}

// bytes is the report's JSON. The report holds no maps, so the encoding is
// deterministic: fields in declaration order, empty lists as [].
func (r Report) bytes() []byte {
	if r.Rules == nil {
		r.Rules = []RuleReport{}
	}
	for i := range r.Rules {
		if r.Rules[i].RecordHashes == nil {
			r.Rules[i].RecordHashes = []string{}
		}
	}
	b, err := json.Marshal(r)
	if err != nil { // unreachable: only strings, numbers and times
		panic("retention: encoding the report: " + err.Error())
	}
	return b
}

// WriteJSON writes the report as one JSON line (the JSON, then "\n").
func (r Report) WriteJSON(w io.Writer) error {
	_, err := w.Write(append(r.bytes(), '\n'))
	return err
}

// Digest is the hex SHA-256 of the report's JSON as WriteJSON writes it,
// without the final newline. To check a written line:
//
//	tr -d '\n' < report.json | sha256sum
func (r Report) Digest() string {
	sum := sha256.Sum256(r.bytes())
	return hex.EncodeToString(sum[:])
}

// Summary maps the report into the API's status type. A total is Unknown
// (-1) when a rule's count is.
func (r Report) Summary() v1alpha1.RetentionRun {
	end := metav1.NewTime(r.End)
	run := v1alpha1.RetentionRun{
		StartTime:   metav1.NewTime(r.Start),
		EndTime:     &end,
		Result:      r.Result,
		ProofDigest: r.Digest(),
	}
	sum := func(total *int64, v int64) {
		if *total == Unknown || v == Unknown {
			*total = Unknown
			return
		}
		*total += v
	}
	for _, rr := range r.Rules {
		run.Rules = append(run.Rules, v1alpha1.RuleRun{
			Rule:            rr.Rule,
			Destroyed:       rr.Destroyed,
			Anonymised:      rr.Anonymised,
			Held:            rr.Held,
			Overdue:         rr.Overdue,
			NoClock:         rr.NoClock,
			KeptByExtension: rr.KeptByExtension,
		})
		run.Destroyed += rr.Destroyed
		run.Anonymised += rr.Anonymised
		sum(&run.Held, rr.Held)
		sum(&run.Overdue, rr.Overdue)
		sum(&run.NoClock, rr.NoClock)
		sum(&run.KeptByExtension, rr.KeptByExtension)
	}
	run.ExtensionsInEffect = int32(min(r.ExtensionsInEffect, math.MaxInt32))
	return run
}
