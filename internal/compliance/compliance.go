// Package compliance holds the pure control checks of dossierguard. Each
// check takes facts gathered by a reconciler and returns a
// v1alpha1.ComplianceControl: the result, a reason, a plain message and the
// evidence (names of objects and settings, never personal data, key
// material or raw errors). Reconcilers turn these into conditions.
package compliance

import (
	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// References maps each control to its AVG article and BIO control.
var References = map[string]string{
	v1alpha1.ControlEncryptionAtRest:   "AVG art. 32(1)(a); BIO 8.24",
	v1alpha1.ControlKeyManagement:      "AVG art. 32(1)(a); BIO 8.24",
	v1alpha1.ControlKeyAccess:          "AVG art. 32(1)(b); BIO 8.3",
	v1alpha1.ControlNetworkSegregation: "AVG art. 32(1)(b); BIO 8.22",
}

func control(name string, result v1alpha1.ComplianceResult, reason, message string, evidence ...string) v1alpha1.ComplianceControl {
	return v1alpha1.ComplianceControl{
		Control:   name,
		Reference: References[name],
		Result:    result,
		Reason:    reason,
		Message:   message,
		Evidence:  evidence,
	}
}

// AllPass says whether every control passed.
func AllPass(controls []v1alpha1.ComplianceControl) bool {
	for _, c := range controls {
		if c.Result != v1alpha1.ResultPass {
			return false
		}
	}
	return len(controls) > 0
}

// FirstFailure is the first control that did not pass, or nil.
func FirstFailure(controls []v1alpha1.ComplianceControl) *v1alpha1.ComplianceControl {
	for i := range controls {
		if controls[i].Result != v1alpha1.ResultPass {
			return &controls[i]
		}
	}
	return nil
}
