package retention

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func sampleReport() Report {
	start := time.Date(2026, 6, 15, 3, 0, 0, 0, time.UTC)
	return Report{
		Start: start, End: start.Add(90 * time.Second), AsOf: start,
		Result: v1alpha1.RunSucceeded, BatchSize: 500, LongestBatch: 42 * time.Millisecond,
		Rules: []RuleReport{{
			Rule: "dossiers", Table: "jeugd.dossiers", Action: v1alpha1.ActionDelete, Period: "P20Y",
			Cutoff: start.AddDate(-20, 0, 0), Batches: 1, Destroyed: 2, Held: 3, Overdue: 0,
			RecordHashes: []string{RecordHash("jeugd.dossiers", "17"), RecordHash("jeugd.dossiers", "18")},
		}, {
			Rule: "contacts", Table: "contacts", Action: v1alpha1.ActionAnonymise, Period: "P6M",
			Cutoff: start.AddDate(0, -6, 0), Batches: 1, Anonymised: 1, Held: 0, Overdue: 4,
			RecordHashes: []string{RecordHash("contacts", "a1")},
		}},
	}
}

func TestRecordHash(t *testing.T) {
	sum := sha256.Sum256([]byte("jeugd.dossiers:17"))
	if got, want := RecordHash("jeugd.dossiers", "17"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("RecordHash = %s; want %s", got, want)
	}
}

// TestReportJSONAndDigest: one JSON line, the digest is the SHA-256 of that
// line without its newline, and it changes with the content.
func TestReportJSONAndDigest(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	line := buf.Bytes()
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("not one line: %q", line)
	}
	sum := sha256.Sum256(bytes.TrimSuffix(line, []byte("\n")))
	if got, want := rep.Digest(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Digest = %s; want SHA-256 of the line %s", got, want)
	}
	if rep.Digest() != sampleReport().Digest() {
		t.Error("Digest is not deterministic")
	}
	changed := sampleReport()
	changed.Rules[0].Destroyed++
	if changed.Digest() == rep.Digest() {
		t.Error("Digest does not change with the content")
	}
	var back Report
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatalf("the line is not JSON: %v", err)
	}
	if back.Digest() != rep.Digest() {
		t.Error("the report does not survive a JSON round trip")
	}
	if bytes.Contains(line, []byte(`"17"`)) || bytes.Contains(line, []byte("a1")) {
		t.Errorf("raw ids in the report: %s", line)
	}
	// Empty lists are [], not null.
	var empty bytes.Buffer
	_ = Report{Rules: []RuleReport{{Rule: "x"}}}.WriteJSON(&empty)
	if !bytes.Contains(empty.Bytes(), []byte(`"recordHashes":[]`)) {
		t.Errorf("empty hashes not []: %s", empty.Bytes())
	}
}

func TestSummary(t *testing.T) {
	rep := sampleReport()
	run := rep.Summary()
	if !run.StartTime.Time.Equal(rep.Start) || run.EndTime == nil || !run.EndTime.Time.Equal(rep.End) {
		t.Errorf("times: %v %v", run.StartTime, run.EndTime)
	}
	if run.Result != v1alpha1.RunSucceeded || run.Destroyed != 2 || run.Anonymised != 1 || run.Held != 3 || run.Overdue != 4 {
		t.Errorf("totals: %+v", run)
	}
	want := []v1alpha1.RuleRun{
		{Rule: "dossiers", Destroyed: 2, Held: 3},
		{Rule: "contacts", Anonymised: 1, Overdue: 4},
	}
	if len(run.Rules) != 2 || run.Rules[0] != want[0] || run.Rules[1] != want[1] {
		t.Errorf("rules: %+v; want %+v", run.Rules, want)
	}
	if run.ProofDigest != rep.Digest() {
		t.Errorf("proofDigest %s; want %s", run.ProofDigest, rep.Digest())
	}

	rep.Rules[1].Held, rep.Rules[1].Overdue, rep.Rules[1].NoClock = Unknown, Unknown, Unknown
	run = rep.Summary()
	if run.NoClock != Unknown {
		t.Errorf("an unknown no-clock count must make the total unknown: %d", run.NoClock)
	}
	if run.Held != Unknown || run.Overdue != Unknown {
		t.Errorf("an unknown count must make the total unknown: held %d, overdue %d", run.Held, run.Overdue)
	}
}
