package compliance

import (
	"fmt"
	"strings"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
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
		return control(v1alpha1.ControlKeyManagement, v1alpha1.ResultFail, v1alpha1.ReasonKeyRotationFailed,
			"the data key could not be created or rotated on time; see the operator's events")
	}
	return control(v1alpha1.ControlKeyManagement, v1alpha1.ResultPass, v1alpha1.ReasonKeyCurrent,
		fmt.Sprintf("data key version %d is current (%d kept for decryption); next rotation %s",
			k.Version, k.Versions, k.NextRotation.UTC().Format(time.RFC3339)),
		fmt.Sprintf("Secret/%s: key version %d", k.Secret, k.Version))
}

// KeyAccessControl passes when only the workload's ServiceAccount is bound
// to read the data key.
func KeyAccessControl(applied bool, role, serviceAccount string) v1alpha1.ComplianceControl {
	if !applied {
		return control(v1alpha1.ControlKeyAccess, v1alpha1.ResultFail, v1alpha1.ReasonKeyAccessNotBound,
			"the Role and RoleBinding that limit the data key to the workload could not be applied")
	}
	return control(v1alpha1.ControlKeyAccess, v1alpha1.ResultPass, v1alpha1.ReasonKeyAccessBound,
		fmt.Sprintf("only ServiceAccount %q may read the data key", serviceAccount),
		"Role/"+role, "RoleBinding/"+role)
}

// NetworkControl passes when the default-deny NetworkPolicy is in place.
func NetworkControl(applied bool, policy string, proxyPort int32) v1alpha1.ComplianceControl {
	if !applied {
		return control(v1alpha1.ControlNetworkSegregation, v1alpha1.ResultFail, v1alpha1.ReasonIsolationMissing,
			"the default-deny NetworkPolicy around the workload could not be applied")
	}
	return control(v1alpha1.ControlNetworkSegregation, v1alpha1.ResultPass, v1alpha1.ReasonDefaultDenyApplied,
		fmt.Sprintf("default deny around the workload; ingress only to the audit proxy on port %d, egress only to DNS and declared dependencies", proxyPort),
		"NetworkPolicy/"+policy)
}

func init() {
	References[v1alpha1.ControlAuditActive] = "AVG art. 5(2), art. 30; BIO 8.15; NEN 7513"
}

// AuditControl passes when every running pod of the workload has the audit
// proxy. listed is false when the pods could not be listed.
func AuditControl(unaudited []string, running int, listed bool) v1alpha1.ComplianceControl {
	switch {
	case !listed:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultUnknown, v1alpha1.ReasonPodsNotListed, "the workload's pods could not be listed")
	case len(unaudited) > 0:
		evidence := make([]string, 0, len(unaudited))
		for _, p := range unaudited {
			evidence = append(evidence, "Pod/"+p+": no audit-proxy container")
		}
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultFail, v1alpha1.ReasonPodsWithoutAuditProxy,
			fmt.Sprintf("%d of %d workload pod(s) run without the audit proxy: %s", len(unaudited), running, strings.Join(unaudited, ", ")), evidence...)
	case running == 0:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultPass, v1alpha1.ReasonNoWorkloadPods, "no pods of the workload are running")
	default:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultPass, v1alpha1.ReasonAllPodsAudited,
			fmt.Sprintf("all %d workload pod(s) run the audit proxy", running))
	}
}
