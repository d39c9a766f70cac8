package compliance

import "testing"

func TestEgressGatedControl(t *testing.T) {
	out := []string{"verwijsindex", "woningcorporatie"}
	cases := []struct {
		name  string
		facts EgressFacts
		want  wantControl
	}{
		{"no outbound agreement", EgressFacts{},
			wantControl{"EgressGated", "Pass", "NoOutboundAgreements", []string{"no sharing agreement"}, nil}},
		{"ready", EgressFacts{Outbound: out, Deployed: true, Ready: true, Gateway: "s-egress"},
			wantControl{"EgressGated", "Pass", "GatewayReady", []string{"2 outbound agreement(s)", "s-egress"},
				[]string{"Deployment/s-egress", "SharingAgreement/verwijsindex", "SharingAgreement/woningcorporatie"}}},
		{"not ready", EgressFacts{Outbound: out, Deployed: true, Gateway: "s-egress"},
			wantControl{"EgressGated", "Fail", "GatewayNotReady", []string{"no available pod", "verwijsindex, woningcorporatie"},
				[]string{"Deployment/s-egress", "SharingAgreement/verwijsindex", "SharingAgreement/woningcorporatie"}}},
		{"not applied", EgressFacts{Outbound: out, Failed: true},
			wantControl{"EgressGated", "Fail", "GatewayNotApplied", []string{"could not be applied"},
				[]string{"SharingAgreement/verwijsindex", "SharingAgreement/woningcorporatie"}}},
		{"direct egress beats a ready gateway", EgressFacts{Outbound: out, Deployed: true, Ready: true, Gateway: "s-egress", DirectEgress: []string{"verwijsindex"}},
			wantControl{"EgressGated", "Fail", "DirectPartnerEgress", []string{"verwijsindex directly"}, []string{"NetworkPolicy/share-verwijsindex"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { assertControl(t, EgressGatedControl(tc.facts), tc.want) })
	}
}
