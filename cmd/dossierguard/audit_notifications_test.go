package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestAuditNotificationsCommand: disclosures without consent are listed
// once per request, per pseudonym, within the period; consented ones,
// denials and staff requests are not; a broken log lists nothing.
func TestAuditNotificationsCommand(t *testing.T) {
	fx := newAuditFixture(t) // for the keys
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	key := bytes.Repeat([]byte{7}, 32)
	childA, childB := auditlog.Pseudonymise(key, "dossier-A"), auditlog.Pseudonymise(key, "dossier-B")
	path := filepath.Join(fx.dir, "sharing.log")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	vt := func(notice bool) *auditlog.Sharing {
		return &auditlog.Sharing{Agreement: "veilig-thuis", Partner: "Veilig Thuis Utrecht", LegalBasis: "VitalInterest",
			Consent: auditlog.ConsentNotRequired, Purpose: "Meldcode stap 5", NoticeRequired: notice}
	}
	school := &auditlog.Sharing{Agreement: "school", Partner: "De Regenboog", LegalBasis: "Consent", ConsentMode: "PerDossier",
		Consent: auditlog.ConsentGiven, Purpose: "Afstemming met school"}
	n := 0
	add := func(day int, subject string, outcome auditlog.Outcome, status int, s *auditlog.Sharing, op int) {
		n++
		err := w.Append(context.Background(), auditlog.Event{
			Time: time.Date(2026, 12, day, 9, 0, n, 0, time.UTC), TraceID: fmt.Sprintf("%032x", op), OperationID: fmt.Sprintf("%016x", op),
			DataSubject: subject, Actor: "vt-system", Action: auditlog.ActionRead, Categories: []string{"identity", "safety"},
			Outcome: outcome, Method: "GET", Route: "read-safety", Status: status, Sharing: s,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(1, childA, auditlog.OutcomeAllowed, 0, vt(true), 1)   // decision
	add(1, childA, auditlog.OutcomeAllowed, 200, vt(true), 1) // its completion: the same disclosure
	add(2, childA, auditlog.OutcomeAllowed, 0, school, 2)     // with consent: no notice
	add(3, childB, auditlog.OutcomeAllowed, 0, vt(true), 3)
	add(3, childB, auditlog.OutcomeDenied, 403, vt(false), 4) // refused: nothing disclosed
	add(5, childA, auditlog.OutcomeAllowed, 0, vt(true), 5)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runAudit(t, nil, "audit", "notifications", path, "--public-key", fx.pub, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []notice
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, g := range got {
		ops = append(ops, g.OperationID[15:])
		if g.Agreement != "veilig-thuis" || g.LegalBasis != "VitalInterest" || g.Partner == "" || g.Purpose == "" {
			t.Errorf("notice %+v", g)
		}
	}
	// Sorted per pseudonym, then time.
	want := []string{"1", "5", "3"}
	if childB < childA {
		want = []string{"3", "1", "5"}
	}
	if strings.Join(ops, ",") != strings.Join(want, ",") {
		t.Errorf("listed operations %v, want %v", ops, want)
	}

	// Period and subject filters.
	out, _, code = runAudit(t, nil, "audit", "notifications", path, "--public-key", fx.pub, "--since", "2026-12-02", "--until", "2026-12-05", "-o", "json")
	if code != 0 || !strings.Contains(out, childB) || strings.Contains(out, childA) {
		t.Errorf("period 2-5 December: exit %d\n%s", code, out)
	}
	out, _, code = runAudit(t, nil, "audit", "notifications", path, "--public-key", fx.pub, "--subject", childA)
	if code != 0 || !strings.Contains(out, "2 disclosure(s) for 1 dossier(s) await notice.") || strings.Contains(out, childB) {
		t.Errorf("subject A: exit %d\n%s", code, out)
	}

	// A broken log lists nothing.
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte{'\n'})
	broken := fx.write(t, "broken.log", append(lines[:2:2], lines[3:]...)...)
	out, _, code = runAudit(t, nil, "audit", "notifications", broken, "--public-key", fx.pub)
	if code != exitAuditBroken || strings.Contains(out, "veilig") {
		t.Errorf("broken log: exit %d, listed %q", code, out)
	}
	// Usage errors.
	for _, args := range [][]string{
		{path},
		{path, "--public-key", fx.pub, "--since", "yesterday"},
		{path, "--public-key", fx.pub, "--subject", "dossier-A"},
		{path, "--public-key", fx.pub, "--since", "2026-12-05", "--until", "2026-12-01"},
	} {
		if _, _, code := runAudit(t, nil, append([]string{"audit", "notifications"}, args...)...); code != exitAuditUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitAuditUsage)
		}
	}
}
