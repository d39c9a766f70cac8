package dsr

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

const pseudonymA = "3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f"

// extension is a RetentionExtension request received on 2 November 2026,
// decided at decided (RFC 3339, "" for undecided), until the day.
func extension(until, decided, ended string, outcome v1alpha1.DecisionOutcome) *v1alpha1.DataSubjectRequest {
	r := request(v1alpha1.RequestRetentionExtension, decided, ended, outcome)
	r.Name = "langer-bewaren"
	r.Spec.StoreRef.Name = "wijkteam"
	r.Spec.Dossier = pseudonymA
	r.Spec.RetentionExtension = &v1alpha1.RetentionExtensionSpec{Until: until, Reference: "brief 2026-118"}
	return r
}

// TestRetentionExtension: the end date, the cap from the decision (or the
// receipt), and when the extension ends.
func TestRetentionExtension(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		req                  *v1alpha1.DataSubjectRequest
		cap                  v1alpha1.Period
		wantKept, wantCap    string
		wantBeyond, wantWith bool
		wantEnds             string
	}{
		{"within the cap", extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "P5Y",
			"2030-06-30", "2031-11-10", false, true, "2030-06-30T22:00:00Z"},
		{"on the cap's last day", extension("2031-11-10", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "P5Y",
			"2031-11-10", "2031-11-10", false, true, "2031-11-10T23:00:00Z"},
		{"beyond the cap: kept until the cap", extension("2040-01-01", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "P5Y",
			"2031-11-10", "2031-11-10", true, true, "2031-11-10T23:00:00Z"},
		{"cap in months, from the receipt while undecided", extension("2027-03-01", "", "", ""), "P3M",
			"2027-02-02", "2027-02-02", true, false, "2027-02-02T23:00:00Z"},
		{"ended early by spec.endedAt", extension("2030-06-30", "2026-11-10T10:00:00Z", "2028-01-01T12:00:00Z", v1alpha1.DecisionPartiallyGranted), "P5Y",
			"2030-06-30", "2031-11-10", false, true, "2028-01-01T12:00:00Z"},
		{"refused: never in effect", extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionRefused), "P5Y",
			"2030-06-30", "2031-11-10", false, false, "2030-06-30T22:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := RetentionExtension(tc.req, tc.cap)
			if err != nil {
				t.Fatal(err)
			}
			if e.KeptUntil.String() != tc.wantKept || e.CapDate.String() != tc.wantCap || e.BeyondCap != tc.wantBeyond || e.Granted != tc.wantWith {
				t.Errorf("kept until %s, cap %s, beyond %v, granted %v; want %s, %s, %v, %v", e.KeptUntil, e.CapDate, e.BeyondCap, e.Granted, tc.wantKept, tc.wantCap, tc.wantBeyond, tc.wantWith)
			}
			if got := e.Ends.UTC().Format(time.RFC3339); got != tc.wantEnds {
				t.Errorf("ends %s, want %s", got, tc.wantEnds)
			}
		})
	}
	if _, err := RetentionExtension(extension("30-06-2030", "", "", ""), "P5Y"); err == nil || err.Error() != `spec.retentionExtension.until: must be a date YYYY-MM-DD, got "30-06-2030"` {
		t.Errorf("bad date: %v, want an error naming spec.retentionExtension.until", err)
	}
	if _, err := RetentionExtension(extension("2030-06-30", "", "", ""), "5 years"); err == nil {
		t.Error("bad cap: no error")
	}
	if _, err := RetentionExtension(request(v1alpha1.RequestAccess, "", "", ""), "P5Y"); err != ErrNotExtension {
		t.Errorf("access request: %v, want ErrNotExtension", err)
	}
}

// TestKeptDossiers: only granted extensions of the store in effect at now
// keep their dossier; one that cannot be computed is an error.
func TestKeptDossiers(t *testing.T) {
	other := extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted)
	other.Spec.StoreRef.Name = "jeugdhulp"
	other.Spec.Dossier = "1111111111111111111111111111111111111111111111111111111111111111"
	later := extension("2030-06-30", "2026-12-10T10:00:00Z", "", v1alpha1.DecisionGranted)
	later.Spec.Dossier = "2222222222222222222222222222222222222222222222222222222222222222"
	deleting := extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted)
	deleting.Spec.Dossier = "3333333333333333333333333333333333333333333333333333333333333333"
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	list := []v1alpha1.DataSubjectRequest{
		*extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted),
		*extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionRefused),
		*other, *later, *deleting,
		*request(v1alpha1.RequestErasure, "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted),
	}
	now := mustParse(t, "2026-12-01T10:00:00Z")
	kept, n, err := KeptDossiers(list, "wijkteam", "P5Y", now)
	if err != nil || n != 1 || len(kept) != 1 || !kept[pseudonymA] {
		t.Errorf("kept %v (%d), %v; want only %s", kept, n, err, pseudonymA)
	}
	kept, _, _ = KeptDossiers(list, "wijkteam", "P5Y", mustParse(t, "2030-06-30T21:59:59Z"))
	if len(kept) != 2 {
		t.Errorf("on the last day: kept %v, want two dossiers", kept)
	}
	if kept, _, _ = KeptDossiers(list, "wijkteam", "P5Y", mustParse(t, "2030-06-30T22:00:00Z")); len(kept) != 0 {
		t.Errorf("after the end date: kept %v, want none", kept)
	}
	if _, _, err := KeptDossiers(list, "wijkteam", "P0Y", now); err == nil {
		t.Error("unusable cap: no error")
	}
	if !HasExtensions(list, "wijkteam") || HasExtensions(list, "elders") {
		t.Error("HasExtensions is wrong")
	}
}

// TestAssessRetentionDecisions: an extension is InEffect until its end,
// then Ended; a dated erasure asks to be looked at again on its day.
func TestAssessRetentionDecisions(t *testing.T) {
	dated := request(v1alpha1.RequestErasure, "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted)
	dated.Spec.Erasure = &v1alpha1.ErasureSpec{NotBefore: "2027-01-15"}
	for _, tc := range []struct {
		name      string
		req       *v1alpha1.DataSubjectRequest
		now       string
		want      v1alpha1.RequestState
		wantNext  string
		wantErase bool
	}{
		{"extension in effect", extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-12-01T10:00:00Z", v1alpha1.StateInEffect, "2030-06-30T22:00:00Z", false},
		{"extension decided for later", extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "2026-11-05T10:00:00Z", v1alpha1.StateDecided, "2026-11-10T10:00:00Z", false},
		{"extension ended", extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "2030-06-30T22:00:00Z", v1alpha1.StateEnded, "", false},
		{"extension capped ends at the cap", extension("2040-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionGranted), "2031-11-10T23:00:00Z", v1alpha1.StateEnded, "", false},
		{"extension refused", extension("2030-06-30", "2026-11-10T10:00:00Z", "", v1alpha1.DecisionRefused), "2026-12-01T10:00:00Z", v1alpha1.StateDecided, "", false},
		{"dated erasure before its day", dated, "2027-01-14T22:59:59Z", v1alpha1.StateDecided, "2027-01-14T23:00:00Z", false},
		{"dated erasure on its day", dated, "2027-01-14T23:00:00Z", v1alpha1.StateDecided, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl, err := RequestDeadline(tc.req, "P4W")
			if err != nil {
				t.Fatal(err)
			}
			now := mustParse(t, tc.now)
			a := Assess(tc.req, dl, now, "P5Y")
			next := ""
			if !a.Next.IsZero() {
				next = a.Next.UTC().Format(time.RFC3339)
			}
			if a.State != tc.want || next != tc.wantNext {
				t.Errorf("state %s next %q, want %s next %q", a.State, next, tc.want, tc.wantNext)
			}
			if tc.req.Spec.Type == v1alpha1.RequestErasure && ErasureDue(tc.req, now) != tc.wantErase {
				t.Errorf("ErasureDue %v, want %v", !tc.wantErase, tc.wantErase)
			}
		})
	}
}
