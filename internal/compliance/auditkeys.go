package compliance

import (
	"fmt"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlAuditSigningKey] = "AVG art. 5(2), art. 32(1)(b); BIO 8.15, 8.24; NEN 7513"
}

// AuditKeyOverdueGrace is how long past its due time a signing-key
// rotation may take before the AuditSigningKey control fails: the
// activation delay of the new version and a margin for a retried write.
const AuditKeyOverdueGrace = time.Hour

// AuditKeyFacts describe a store's audit keys after reconciling them.
type AuditKeyFacts struct {
	// SigningSecret and PseudonymSecret are the Secrets' names.
	SigningSecret, PseudonymSecret string
	// KeyID, Version and Created describe the version the proxy signs
	// with; Versions counts those kept.
	KeyID    string
	Version  int
	Created  time.Time
	Versions int
	// PendingKeyID and PendingActiveFrom describe a newer version that is
	// not active yet.
	PendingKeyID      string
	PendingActiveFrom time.Time
	// NextRotation is when the next version is due (creation of the newest
	// version plus the rotation period).
	NextRotation time.Time
	// Failed is set when the keys could not be read, created, checked or
	// rotated, or a public key could not be kept; Problem says which, in
	// words that name objects, never key material or a raw error.
	Failed  bool
	Problem string
}

// AuditSigningKeyControl passes when both Secrets are usable, every public
// key is kept, and no rotation is overdue by more than AuditKeyOverdueGrace.
func AuditSigningKeyControl(k AuditKeyFacts, now time.Time) v1alpha1.ComplianceControl {
	evidence := []string{"Secret/" + k.SigningSecret, "Secret/" + k.PseudonymSecret}
	switch {
	case k.Failed || k.KeyID == "":
		problem := k.Problem
		if problem == "" {
			problem = "the audit keys are not there yet"
		}
		return control(v1alpha1.ControlAuditSigningKey, v1alpha1.ResultFail, v1alpha1.ReasonAuditKeysUnavailable,
			problem+"; see the operator's events", evidence...)
	case !now.Before(k.NextRotation.Add(AuditKeyOverdueGrace)):
		return control(v1alpha1.ControlAuditSigningKey, v1alpha1.ResultFail, v1alpha1.ReasonAuditKeyOverdue,
			fmt.Sprintf("checkpoint signing key %s (version %d, made %s) was due for rotation at %s",
				k.KeyID, k.Version, k.Created.UTC().Format(time.RFC3339), k.NextRotation.UTC().Format(time.RFC3339)), evidence...)
	}
	msg := fmt.Sprintf("checkpoints are signed with key %s (version %d of %d, made %s); next rotation %s; every public key is kept in ConfigMap dossierguard-audit-trust",
		k.KeyID, k.Version, k.Versions, k.Created.UTC().Format(time.RFC3339), k.NextRotation.UTC().Format(time.RFC3339))
	if k.PendingKeyID != "" {
		msg += fmt.Sprintf("; key %s takes over at %s", k.PendingKeyID, k.PendingActiveFrom.UTC().Format(time.RFC3339))
	}
	return control(v1alpha1.ControlAuditSigningKey, v1alpha1.ResultPass, v1alpha1.ReasonAuditKeyCurrent, msg, evidence...)
}
