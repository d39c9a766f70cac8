package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

var erasureKey = []byte("0123456789abcdef0123456789abcdef")

// erasureTables creates schema.dossiers (Delete, legal hold) and
// schema.notes (Anonymise, no legal hold), each row naming its dossier by
// raw id, and returns the rules.
func erasureTables(t *testing.T, pool *pgxpool.Pool, schema string) []v1alpha1.RetentionRule {
	t.Helper()
	execSQL(t, pool, "CREATE TABLE "+schema+".dossiers (id bigint PRIMARY KEY, dossier_id text, closed_at timestamptz, legal_hold boolean, name text)")
	execSQL(t, pool, "CREATE TABLE "+schema+".notes (id bigint PRIMARY KEY, dossier varchar(32), written_at timestamptz, body text)")
	execSQL(t, pool, "CREATE TABLE "+schema+".audit_lines (id bigint PRIMARY KEY, written_at timestamptz)")
	long, recent := testNow.AddDate(-20, 0, 0), testNow.AddDate(-1, 0, 0)
	for _, r := range []struct {
		id      int64
		dossier string
		closed  any
		hold    any
	}{
		{1, "D-1001", long, nil},   // A, past its minimum
		{2, "d-1001", long, false}, // A in another spelling: the pseudonym lower-cases
		{3, "D-2002", long, true},  // B, under legal hold
		{4, "D-3003", recent, nil}, // C, within its minimum
		{5, "D-3003", nil, nil},    // C, not closed: within its minimum too
		{6, "D-4004", long, nil},   // D, never asked for
	} {
		execSQL(t, pool, "INSERT INTO "+schema+".dossiers VALUES ($1, $2, $3, $4, 'Naam')", r.id, r.dossier, r.closed, r.hold)
	}
	for _, r := range []struct {
		id      int64
		dossier string
	}{{10, "D-1001"}, {11, "D-1001"}, {12, "D-2002"}, {13, "D-3003"}, {14, "D-4004"}} {
		execSQL(t, pool, "INSERT INTO "+schema+".notes VALUES ($1, $2, $3, 'tekst')", r.id, r.dossier, long)
	}
	execSQL(t, pool, "INSERT INTO "+schema+".audit_lines VALUES (1, $1)", long)
	return []v1alpha1.RetentionRule{
		{Name: "dossiers", Table: v1alpha1.SQLTableName(schema + ".dossiers"), DossierColumn: "dossier_id",
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_at"}, Period: "P15Y", LegalHoldColumn: "legal_hold"},
		{Name: "notes", Table: v1alpha1.SQLTableName(schema + ".notes"), DossierColumn: "dossier",
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockCreation, Column: "written_at"}, Period: "P15Y",
			Action: v1alpha1.ActionAnonymise, AnonymiseColumns: []v1alpha1.SQLIdentifier{"body"}},
		{Name: "audit", Table: v1alpha1.SQLTableName(schema + ".audit_lines"),
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockCreation, Column: "written_at"}, Period: "P15Y"},
	}
}

func erase(t *testing.T, pool *pgxpool.Pool, rules []v1alpha1.RetentionRule, id string, weighed bool) ErasureReport {
	t.Helper()
	rep, err := Erase(context.Background(), pool, Erasure{
		Rules: rules, Key: erasureKey, Dossier: auditproxy.DossierPseudonym(erasureKey, id), Weighed: weighed, Now: fixedNow(testNow),
	})
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	return rep
}

// TestEraseOneDossier: erasure destroys every record of one dossier in
// every rule's table (in any spelling of its id), leaves the others, stops
// at a legal hold and at a statutory minimum without weighing, and its
// proof counts and hashes exactly what it destroyed, without identifiers.
func TestEraseOneDossier(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "er_")
	rules := erasureTables(t, pool, schema)
	dossiers, notes := schema+".dossiers", schema+".notes"
	anonymised := func() map[int64]bool {
		m := map[int64]bool{}
		rows, err := pool.Query(context.Background(), "SELECT id FROM "+notes+" WHERE body IS NULL")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			m[id] = true
		}
		return m
	}

	// A: erased everywhere; B (held), C and D stay.
	rep := erase(t, pool, rules, "D-1001", false)
	if rep.Result != v1alpha1.ErasureErased {
		t.Fatalf("A: result %s (%s), want Erased", rep.Result, rep.Message)
	}
	if got := ids(t, pool, dossiers); !sameIDs(got, []int64{3, 4, 5, 6}) {
		t.Errorf("A: dossiers left %v, want 3 4 5 6", keys(got))
	}
	if got := anonymised(); !sameIDs(got, []int64{10, 11}) {
		t.Errorf("A: notes anonymised %v, want 10 11", keys(got))
	}
	if len(rep.Tables) != 2 || rep.Tables[0].Destroyed != 2 || rep.Tables[1].Anonymised != 2 || rep.Tables[0].Held != 0 {
		t.Errorf("A: tables %+v, want 2 destroyed in dossiers, 2 anonymised in notes", rep.Tables)
	}
	if !sameSet(rep.Tables[0].RecordHashes, hashes(dossiers, []int64{1, 2})) || !sameSet(rep.Tables[1].RecordHashes, hashes(notes, []int64{10, 11})) {
		t.Errorf("A: record hashes %v %v are not those of the erased records", rep.Tables[0].RecordHashes, rep.Tables[1].RecordHashes)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0] != "audit" {
		t.Errorf("A: skipped %v, want [audit]", rep.Skipped)
	}
	var b strings.Builder
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	line := b.String()
	for _, secret := range []string{"D-1001", "d-1001", auditproxy.DossierPseudonym(erasureKey, "D-1001"), string(erasureKey), "Naam"} {
		if strings.Contains(line, secret) {
			t.Errorf("the proof holds %q: %s", secret, line)
		}
	}
	sum := sha256.Sum256([]byte(strings.TrimSuffix(line, "\n")))
	if rep.Digest() != hex.EncodeToString(sum[:]) {
		t.Errorf("Digest %s is not the SHA-256 of the written line", rep.Digest())
	}
	run := rep.Summary("wijkteam")
	if run.Policy != "wijkteam" || run.Result != v1alpha1.ErasureErased || run.ProofDigest != rep.Digest() ||
		len(run.Tables) != 2 || run.Tables[0].Destroyed != 2 || run.Tables[1].Anonymised != 2 || len(run.SkippedRules) != 1 {
		t.Errorf("Summary %+v does not match the report", run)
	}

	// Again: nothing left to erase.
	if again := erase(t, pool, rules, "D-1001", false); again.Result != v1alpha1.ErasureErased || again.Tables[0].Destroyed != 0 {
		t.Errorf("A again: %s, destroyed %d; want Erased, 0", again.Result, again.Tables[0].Destroyed)
	}

	// B is under legal hold: nothing of it is destroyed, in any table.
	before := checksum(t, pool, dossiers) + checksum(t, pool, notes)
	held := erase(t, pool, rules, "D-2002", true)
	if held.Result != v1alpha1.ErasureHeld || held.Tables[0].Held != 1 || held.Tables[0].Destroyed != 0 || held.Tables[1].Anonymised != 0 {
		t.Errorf("B: %s %+v, want Held with 1 held and nothing destroyed", held.Result, held.Tables)
	}
	if strings.Contains(held.Message, "D-2002") {
		t.Errorf("B: message names the dossier: %s", held.Message)
	}
	if after := checksum(t, pool, dossiers) + checksum(t, pool, notes); after != before {
		t.Error("B: a held dossier was changed")
	}

	// C is within its statutory minimum: kept without a weighing, erased
	// with one.
	kept := erase(t, pool, rules, "D-3003", false)
	if kept.Result != v1alpha1.ErasureWeighingRequired || kept.Tables[0].Held != 2 {
		t.Errorf("C: %s %+v, want WeighingRequired with 2 held", kept.Result, kept.Tables)
	}
	if after := checksum(t, pool, dossiers) + checksum(t, pool, notes); after != before {
		t.Error("C: changed without a weighing")
	}
	weighed := erase(t, pool, rules, "D-3003", true)
	if weighed.Result != v1alpha1.ErasureErased || weighed.Tables[0].Destroyed != 2 || weighed.Tables[1].Anonymised != 1 {
		t.Errorf("C weighed: %s %+v, want Erased, 2 destroyed, 1 anonymised", weighed.Result, weighed.Tables)
	}
	if got := ids(t, pool, dossiers); !sameIDs(got, []int64{3, 6}) {
		t.Errorf("dossiers left %v, want 3 (held) and 6 (never asked)", keys(got))
	}
	if got := anonymised(); !sameIDs(got, []int64{10, 11, 13}) {
		t.Errorf("notes anonymised %v, want 10 11 13", keys(got))
	}
}

// TestEraseRefusesBadInput: a missing key or a dossier that is not a
// pseudonym is refused before the database is touched, naming the field.
func TestEraseRefusesBadInput(t *testing.T) {
	t.Parallel()
	rules := []v1alpha1.RetentionRule{{Name: "d", Table: "t", DossierColumn: "dossier_id",
		Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "c"}, Period: "P1Y"}}
	for _, tc := range []struct {
		name string
		e    Erasure
		want string
	}{
		{"no key", Erasure{Rules: rules, Dossier: strings.Repeat("a", 64)}, "key:"},
		{"raw id", Erasure{Rules: rules, Key: erasureKey, Dossier: "D-1001"}, "dossier:"},
		{"upper-case hex", Erasure{Rules: rules, Key: erasureKey, Dossier: strings.Repeat("A", 64)}, "dossier:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Erase(context.Background(), nil, tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) || rep.Result != v1alpha1.ErasureFailed {
				t.Errorf("Erase = %s, %v; want Failed and an error naming %q", rep.Result, err, tc.want)
			}
		})
	}
}
