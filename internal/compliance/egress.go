package compliance

import (
	"fmt"
	"strings"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func init() {
	References[v1alpha1.ControlEgressGated] = "AVG art. 5(1)(b), art. 5(2), art. 30(1)(d); BIO 8.20, 8.22"
}

// EgressFacts are what the store reconciler found of its egress gateway.
type EgressFacts struct {
	// Outbound are the agreements with outbound routes.
	Outbound []string
	// Deployed: the gateway's objects are applied; Ready: its Deployment
	// has an available pod of the current spec.
	Deployed, Ready bool
	// Failed: the gateway could not be applied or read.
	Failed bool
	// DirectEgress are outbound agreements whose own NetworkPolicy still
	// admits the workload's egress to the partner.
	DirectEgress []string
	// Gateway is the Deployment's name, for the evidence.
	Gateway string
}

// EgressGatedControl passes when the store has no outbound agreement, or
// when its gateway is ready and no outbound agreement gives the workload
// direct egress to its partner.
func EgressGatedControl(f EgressFacts) v1alpha1.ComplianceControl {
	agreements := prefixed("SharingAgreement/", f.Outbound)
	switch {
	case len(f.Outbound) == 0:
		return control(v1alpha1.ControlEgressGated, v1alpha1.ResultPass, v1alpha1.ReasonNoOutboundAgreements,
			"no sharing agreement of the store has outbound routes, so there is no egress gateway")
	case len(f.DirectEgress) > 0:
		return control(v1alpha1.ControlEgressGated, v1alpha1.ResultFail, v1alpha1.ReasonDirectPartnerEgress,
			fmt.Sprintf("the workload may still reach the partner of %s directly, around the egress gateway", strings.Join(f.DirectEgress, ", ")),
			prefixed("NetworkPolicy/share-", f.DirectEgress)...)
	case f.Failed || !f.Deployed:
		return control(v1alpha1.ControlEgressGated, v1alpha1.ResultFail, v1alpha1.ReasonGatewayNotApplied,
			fmt.Sprintf("the egress gateway for %s could not be applied: nothing the application sends to those partners leaves the store", strings.Join(f.Outbound, ", ")),
			agreements...)
	case !f.Ready:
		return control(v1alpha1.ControlEgressGated, v1alpha1.ResultFail, v1alpha1.ReasonGatewayNotReady,
			fmt.Sprintf("the egress gateway %s has no available pod yet: the application's requests to the partners of %s fail", f.Gateway, strings.Join(f.Outbound, ", ")),
			append([]string{"Deployment/" + f.Gateway}, agreements...)...)
	}
	return control(v1alpha1.ControlEgressGated, v1alpha1.ResultPass, v1alpha1.ReasonGatewayReady,
		fmt.Sprintf("everything the application sends under %d outbound agreement(s) goes through the egress gateway %s, which decides and records each request", len(f.Outbound), f.Gateway),
		append([]string{"Deployment/" + f.Gateway}, agreements...)...)
}
