package accesspolicy

import (
	"bytes"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestAgreementInForceFor: the direction decides which flow an agreement
// allows; everything else is decided alike for both flows.
func TestAgreementInForceFor(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	until := t0.Add(time.Hour)
	cases := []struct {
		direction v1alpha1.Direction
		flow      Flow
		at        time.Time
		suspended bool
		want      string
	}{
		{v1alpha1.DirectionEgress, Outbound, t0, false, ""},
		{v1alpha1.DirectionBoth, Outbound, t0, false, ""},
		{v1alpha1.DirectionIngress, Outbound, t0, false, NotInForceIngressOnly},
		{v1alpha1.DirectionEgress, Inbound, t0, false, NotInForceEgressOnly},
		{v1alpha1.DirectionBoth, Inbound, t0, false, ""},
		{v1alpha1.DirectionEgress, Outbound, until, false, NotInForceExpired},
		{v1alpha1.DirectionEgress, Outbound, until.Add(-time.Nanosecond), false, ""},
		{v1alpha1.DirectionEgress, Outbound, t0, true, NotInForceSuspended},
	}
	for _, tc := range cases {
		a := Agreement{Name: "vi", Direction: tc.direction, ValidUntil: &until, Suspended: tc.suspended}
		ok, why := a.InForceFor(tc.flow, tc.at)
		if ok != (tc.want == "") || why != tc.want {
			t.Errorf("%s, flow %d, at %s, suspended %v: InForceFor = %v, %q; want %q", tc.direction, tc.flow, tc.at.Format(time.RFC3339Nano), tc.suspended, ok, why, tc.want)
		}
	}
}

func egressAgreement(name, endpoint string) *v1alpha1.SharingAgreement {
	return &v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.SharingAgreementSpec{
		Partner: v1alpha1.Partner{Type: v1alpha1.PartnerReferralIndex, Name: "Verwijsindex", CIDRs: []string{"192.0.2.0/28"},
			Endpoint: endpoint, TLS: &v1alpha1.PartnerTLS{CABundle: v1alpha1.SecretKeyReference{Name: "vi-ca", Key: "ca.crt"}, ClientCertificateSecretName: "vi-client"}},
		Direction:  v1alpha1.DirectionEgress,
		LegalBasis: v1alpha1.BasisLegalObligation, LegalReference: "Jeugdwet art. 7.1.1.1",
		Categories: []v1alpha1.DataCategory{"contact", "identity"}, Purpose: "Signaal in de Verwijsindex",
		ProcessingActivities: []v1alpha1.ActivityName{"verwijsindex"},
		OutboundRoutes: []v1alpha1.OutboundRoute{
			{Name: "signal", Method: "POST", Path: "/signalen/{dossier}", Categories: []v1alpha1.DataCategory{"identity"}, ProcessingActivities: []v1alpha1.ActivityName{"verwijsindex"}},
			{Name: "contact", Method: "PUT", Path: "/signalen/{dossier}/contact", Categories: []v1alpha1.DataCategory{"contact", "identity"}},
		},
	}}
}

// TestBuildEgress: only agreements with an endpoint are in the document,
// sorted, with their routes sorted and exported, the client certificate
// flagged, the activities' IDs recorded; the same input gives the same
// bytes in any order, and the bytes decode to the same document.
func TestBuildEgress(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: "cjg-dossiers"},
		Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{ProcessingActivity: "https://register.example/cjg"}}}
	vi, school := egressAgreement("verwijsindex", "https://vi.example.nl/api"), egressAgreement("school", "")
	school.Spec.Partner.TLS = nil
	activities := []v1alpha1.ProcessingActivity{{ObjectMeta: metav1.ObjectMeta{Name: "verwijsindex"}}}
	var entries []EgressAgreement
	for _, a := range []*v1alpha1.SharingAgreement{school, vi} {
		if e, ok := EgressEntry(a, ""); ok {
			entries = append(entries, e)
		}
	}
	doc := BuildEgress(store, entries, activities)
	if len(doc.Agreements) != 1 || doc.Agreements[0].Name != "verwijsindex" {
		t.Fatalf("agreements = %+v, want verwijsindex only", doc.Agreements)
	}
	g := doc.Agreement("verwijsindex")
	switch {
	case g == nil || doc.Agreement("school") != nil:
		t.Fatalf("Agreement look-up: verwijsindex %v, school %v", g, doc.Agreement("school"))
	case g.Endpoint != "https://vi.example.nl/api" || !g.ClientCertificate:
		t.Errorf("endpoint %q, clientCertificate %v", g.Endpoint, g.ClientCertificate)
	case len(g.Routes) != 2 || g.Routes[0].Name != "contact" || g.Routes[1].Name != "signal":
		t.Errorf("routes not sorted by name: %+v", g.Routes)
	case g.Routes[0].Action != v1alpha1.ActionExport || g.Routes[0].Categories[0] != "identity" || g.Routes[0].Categories[1] != "contact":
		t.Errorf("route contact = %+v, want export of identity, contact in vocabulary order", g.Routes[0])
	case doc.ActivityID("verwijsindex") != activities[0].ID() || doc.ActivityID("") != "https://register.example/cjg":
		t.Errorf("activity IDs %v", doc.ActivityIDs)
	}
	vi.Spec.Partner.TLS.ClientCertificateSecretName = ""
	if e, _ := EgressEntry(vi, ""); e.ClientCertificate {
		t.Error("clientCertificate set without a client certificate Secret")
	}

	data, _, err := EncodeEgress(doc)
	if err != nil {
		t.Fatal(err)
	}
	reversed := BuildEgress(store, []EgressAgreement{entries[0]}, activities)
	again, _, _ := EncodeEgress(reversed)
	if !bytes.Equal(data, again) {
		t.Error("the same agreements encode differently")
	}
	back, err := DecodeEgress(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Agreements[0].Endpoint != g.Endpoint || back.Agreements[0].Partner != "Verwijsindex" || len(back.Agreements[0].Routes) != 2 {
		t.Errorf("decoded %+v", back.Agreements[0])
	}
	if _, err := DecodeEgress([]byte(`{"version":2}`)); err == nil {
		t.Error("version 2 decoded")
	}
}
