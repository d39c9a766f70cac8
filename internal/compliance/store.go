package compliance

import (
	"fmt"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Reasons of the store's other controls.
const (
	ReasonKeyCurrent         = "KeyCurrent"
	ReasonKeyRotationFailed  = "KeyRotationFailed"
	ReasonKeyAccessBound     = "BoundToWorkloadServiceAccount"
	ReasonKeyAccessNotBound  = "KeyAccessNotApplied"
	ReasonDefaultDenyApplied = "DefaultDenyApplied"
	ReasonIsolationMissing   = "IsolationNotApplied"
)

// KeyFacts describe a store's data key after reconciling it.
type KeyFacts struct {
	Secret       string
	Version      int32
	Versions     int
	NextRotation time.Time
	// Failed is set when the key could not be created or rotated.
	Failed bool
}

// KeyManagementControl passes when a current data key exists and is within
// its rotation period.
func KeyManagementControl(k KeyFacts, now time.Time) v1alpha1.ComplianceControl {
	if k.Failed || k.Version == 0 || !now.Before(k.NextRotation) {
		return control(ControlKeyManagement, v1alpha1.ResultFail, ReasonKeyRotationFailed,
			"the data key could not be created or rotated on time; see the operator's events")
	}
	return control(ControlKeyManagement, v1alpha1.ResultPass, ReasonKeyCurrent,
		fmt.Sprintf("data key version %d is current (%d kept for decryption); next rotation %s",
			k.Version, k.Versions, k.NextRotation.UTC().Format(time.RFC3339)),
		fmt.Sprintf("Secret/%s: key version %d", k.Secret, k.Version))
}

// KeyAccessControl passes when only the workload's ServiceAccount is bound
// to read the data key.
func KeyAccessControl(applied bool, role, serviceAccount string) v1alpha1.ComplianceControl {
	if !applied {
		return control(ControlKeyAccess, v1alpha1.ResultFail, ReasonKeyAccessNotBound,
			"the Role and RoleBinding that limit the data key to the workload could not be applied")
	}
	return control(ControlKeyAccess, v1alpha1.ResultPass, ReasonKeyAccessBound,
		fmt.Sprintf("only ServiceAccount %q may read the data key", serviceAccount),
		"Role/"+role, "RoleBinding/"+role)
}

// NetworkControl passes when the default-deny NetworkPolicy is in place.
func NetworkControl(applied bool, policy string, proxyPort int32) v1alpha1.ComplianceControl {
	if !applied {
		return control(ControlNetworkSegregation, v1alpha1.ResultFail, ReasonIsolationMissing,
			"the default-deny NetworkPolicy around the workload could not be applied")
	}
	return control(ControlNetworkSegregation, v1alpha1.ResultPass, ReasonDefaultDenyApplied,
		fmt.Sprintf("default deny around the workload; ingress only to the audit proxy on port %d, egress only to DNS and declared dependencies", proxyPort),
		"NetworkPolicy/"+policy)
}
