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

// ProxyTransport is how the audit proxy serves: TLS with the store's
// serving certificate, or plain HTTP by the store's explicit opt-out.
type ProxyTransport struct {
	// TLS is false only when the store opted out (spec.workload.proxyTLS).
	TLS bool
	// DisabledReason is the store's reason for plain HTTP.
	DisabledReason string
	// Secret holds the serving certificate; Issued is set when it holds a
	// valid one, until NotAfter.
	Secret   string
	Issued   bool
	NotAfter time.Time
}

// describe is the transport in words, for messages and evidence.
func (t ProxyTransport) describe() string {
	if !t.TLS {
		return "plain HTTP (spec.workload.proxyTLS.mode Disabled: " + t.DisabledReason + ")"
	}
	return "TLS"
}

// NetworkControl passes when the default-deny NetworkPolicy is in place; it
// says whether the one open port serves TLS.
func NetworkControl(applied bool, policy string, proxyPort int32, transport ProxyTransport) v1alpha1.ComplianceControl {
	if !applied {
		return control(v1alpha1.ControlNetworkSegregation, v1alpha1.ResultFail, v1alpha1.ReasonIsolationMissing,
			"the default-deny NetworkPolicy around the workload could not be applied")
	}
	return control(v1alpha1.ControlNetworkSegregation, v1alpha1.ResultPass, v1alpha1.ReasonDefaultDenyApplied,
		fmt.Sprintf("default deny around the workload; ingress only to the audit proxy on port %d (%s), egress only to DNS and declared dependencies", proxyPort, transport.describe()),
		"NetworkPolicy/"+policy)
}

func init() {
	References[v1alpha1.ControlAuditActive] = "AVG art. 5(2), art. 30; BIO 8.15; NEN 7513"
}

// AuditControl passes when every running pod of the workload has the audit
// proxy and the proxy can serve as the store says (TLS needs an issued
// serving certificate). listed is false when the pods could not be listed.
// The evidence names the transport: the certificate's Secret and expiry, or
// plain HTTP with the store's reason.
func AuditControl(unaudited []string, running int, listed bool, transport ProxyTransport) v1alpha1.ComplianceControl {
	evidence := []string{"plain HTTP: spec.workload.proxyTLS.mode Disabled (" + transport.DisabledReason + ")"}
	if transport.TLS {
		evidence = []string{fmt.Sprintf("Secret/%s: TLS serving certificate valid until %s", transport.Secret, transport.NotAfter.UTC().Format(time.RFC3339))}
	}
	switch {
	case !listed:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultUnknown, v1alpha1.ReasonPodsNotListed, "the workload's pods could not be listed")
	case transport.TLS && !transport.Issued:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultFail, v1alpha1.ReasonServingCertificateMissing,
			fmt.Sprintf("the audit proxy's TLS serving certificate (Secret %s) is not issued (see the operator's log; without the webhook the operator has no CA); the workload's pods cannot start their proxy", transport.Secret))
	case len(unaudited) > 0:
		for _, p := range unaudited {
			evidence = append(evidence, "Pod/"+p+": not the injected audit proxy")
		}
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultFail, v1alpha1.ReasonPodsWithoutAuditProxy,
			fmt.Sprintf("%d of %d workload pod(s) run without the audit proxy the webhook injects (or with something that goes around it): %s", len(unaudited), running, strings.Join(unaudited, ", ")), evidence...)
	case running == 0:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultPass, v1alpha1.ReasonNoWorkloadPods,
			fmt.Sprintf("no pods of the workload are running; the audit proxy serves %s", transport.describe()), evidence...)
	default:
		return control(v1alpha1.ControlAuditActive, v1alpha1.ResultPass, v1alpha1.ReasonAllPodsAudited,
			fmt.Sprintf("all %d workload pod(s) run the audit proxy, serving %s", running, transport.describe()), evidence...)
	}
}
