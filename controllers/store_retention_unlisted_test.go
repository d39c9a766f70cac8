package controllers

import (
	"testing"

	"github.com/dossierguard/dossierguard/internal/compliance"
)

// The control the reconciler reports when the policies cannot be listed is
// one the CRD accepts, and it does not pass.
func TestSetStoreStatusRetentionNotListed(t *testing.T) {
	store := statusStore()
	f := convergedFacts()
	f.retention = compliance.RetentionNotListedControl()
	setStoreStatus(store, f)
	for _, c := range store.Status.Compliance {
		if c.Control == "RetentionEnforced" && (c.Result != "Unknown" || c.Reason != "RetentionPoliciesNotListed") {
			t.Errorf("RetentionEnforced = %s/%s; want Unknown/RetentionPoliciesNotListed", c.Result, c.Reason)
		}
	}
	for _, c := range store.Status.Conditions {
		if c.Type == "Compliant" && c.Status == "True" {
			t.Errorf("Compliant is True while retention is unknown")
		}
	}
}
