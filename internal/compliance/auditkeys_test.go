package compliance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestAuditSigningKeyControl(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	good := AuditKeyFacts{SigningSecret: "d-audit-signing", PseudonymSecret: "d-pseudonym", KeyID: "0123456789abcdef", Version: 3, Versions: 3,
		Created: now.AddDate(0, -2, 0), NextRotation: now.AddDate(0, 10, 0)}
	for _, tt := range []struct {
		name       string
		mutate     func(*AuditKeyFacts)
		result     v1alpha1.ComplianceResult
		reason     string
		inMessage  []string
		notMessage string
	}{
		{"current", func(*AuditKeyFacts) {}, v1alpha1.ResultPass, v1alpha1.ReasonAuditKeyCurrent, []string{"0123456789abcdef", "version 3 of 3", "dossierguard-audit-trust"}, "takes over"},
		{"pending", func(k *AuditKeyFacts) { k.PendingKeyID, k.PendingActiveFrom = "fedcba9876543210", now.Add(time.Minute) }, v1alpha1.ResultPass, v1alpha1.ReasonAuditKeyCurrent,
			[]string{"key fedcba9876543210 takes over at 2026-12-01T12:01:00Z"}, ""},
		{"due, within the grace", func(k *AuditKeyFacts) { k.NextRotation = now.Add(-AuditKeyOverdueGrace + time.Second) }, v1alpha1.ResultPass, v1alpha1.ReasonAuditKeyCurrent, nil, ""},
		{"overdue", func(k *AuditKeyFacts) { k.NextRotation = now.Add(-AuditKeyOverdueGrace) }, v1alpha1.ResultFail, v1alpha1.ReasonAuditKeyOverdue,
			[]string{"0123456789abcdef", "was due for rotation at"}, ""},
		{"failed", func(k *AuditKeyFacts) { k.Failed, k.Problem = true, "Role d-pseudonym-reader could not be applied" }, v1alpha1.ResultFail, v1alpha1.ReasonAuditKeysUnavailable,
			[]string{"Role d-pseudonym-reader could not be applied"}, ""},
		{"no key yet", func(k *AuditKeyFacts) { k.KeyID = "" }, v1alpha1.ResultFail, v1alpha1.ReasonAuditKeysUnavailable, []string{"not there yet"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := good
			tt.mutate(&k)
			c := AuditSigningKeyControl(k, now)
			if c.Control != v1alpha1.ControlAuditSigningKey || c.Result != tt.result || c.Reason != tt.reason || c.Reference == "" {
				t.Fatalf("control %+v; want %s %s", c, tt.result, tt.reason)
			}
			for _, s := range tt.inMessage {
				if !strings.Contains(c.Message, s) {
					t.Errorf("message %q lacks %q", c.Message, s)
				}
			}
			if tt.notMessage != "" && strings.Contains(c.Message, tt.notMessage) {
				t.Errorf("message %q has %q", c.Message, tt.notMessage)
			}
			if !slices.Equal(c.Evidence, []string{"Secret/d-audit-signing", "Secret/d-pseudonym"}) {
				t.Errorf("evidence %v", c.Evidence)
			}
		})
	}
}
