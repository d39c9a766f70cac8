package accesspolicy

import (
	"bytes"
	"math/rand"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestEncodingIsIndependentOfOrder(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{
			{Name: "b", Method: "GET", Path: "/b", Categories: []v1alpha1.DataCategory{"plan", "identity"}, Action: "read"},
			{Name: "a", Method: "GET", Path: "/a", Categories: []v1alpha1.DataCategory{"contact"}, Action: "read"},
		}}}}
	roles := []v1alpha1.AccessRole{
		{ObjectMeta: metav1.ObjectMeta{Name: "coach"}, Spec: v1alpha1.AccessRoleSpec{
			Subjects:   []v1alpha1.Subject{{Kind: "Group", Name: "coaches"}, {Kind: "User", Name: "an@example.nl"}, {Kind: "Group", Name: "admins"}},
			Categories: []v1alpha1.DataCategory{"plan", "identity", "contact"}, Actions: []v1alpha1.Action{"write", "read"}, Purpose: "p"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "admin"}, Spec: v1alpha1.AccessRoleSpec{
			Subjects:   []v1alpha1.Subject{{Kind: "ServiceAccount", Name: "batch", Namespace: "ns"}},
			Categories: []v1alpha1.DataCategory{"contact", "identity"}, Actions: []v1alpha1.Action{"read"}, Purpose: "q",
			BreakGlass: &v1alpha1.BreakGlass{ReviewPeriod: "P30D"}}},
	}
	want, wantHash, err := Encode(Build(store, roles, nil))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		shuffled := make([]v1alpha1.AccessRole, len(roles))
		for j, p := range rng.Perm(len(roles)) {
			shuffled[j] = *roles[p].DeepCopy()
			s := shuffled[j].Spec
			rng.Shuffle(len(s.Subjects), func(a, b int) { s.Subjects[a], s.Subjects[b] = s.Subjects[b], s.Subjects[a] })
			rng.Shuffle(len(s.Categories), func(a, b int) { s.Categories[a], s.Categories[b] = s.Categories[b], s.Categories[a] })
			rng.Shuffle(len(s.Actions), func(a, b int) { s.Actions[a], s.Actions[b] = s.Actions[b], s.Actions[a] })
		}
		got, hash, _ := Encode(Build(store, shuffled, nil))
		if !bytes.Equal(got, want) || hash != wantHash {
			t.Fatalf("order changed the document:\n%s\nvs\n%s", got, want)
		}
	}
	doc, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Roles[0].Name != "admin" || !doc.Roles[0].BreakGlass || doc.Routes[0].Name != "a" ||
		string(doc.Roles[1].Categories[0]) != "identity" || doc.Roles[1].Subjects[0].Name != "admins" {
		t.Errorf("not canonical: %+v", doc)
	}
}

func TestDecodeRefusesUnknownVersion(t *testing.T) {
	for _, v := range []string{`{"version":0}`, `{"version":3}`, `{}`} {
		if _, err := Decode([]byte(v)); err == nil {
			t.Errorf("accepted %s", v)
		}
	}
	for _, v := range []string{`{"version":1}`, `{"version":2}`} {
		if _, err := Decode([]byte(v)); err != nil {
			t.Errorf("refused %s: %v", v, err)
		}
	}
}

// TestBuildWritesTheOldestVersionThatHoldsTheDocument: version 1 unless a
// route declares records, so that a proxy of a release before records
// refuses such a document instead of serving the route unfiltered.
func TestBuildWritesTheOldestVersionThatHoldsTheDocument(t *testing.T) {
	route := v1alpha1.AuditRoute{Name: "export", Method: "GET", Path: "/export", Categories: []v1alpha1.DataCategory{"identification"}, Action: "export"}
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{route}}}}
	if v := Build(store, nil, nil).Version; v != VersionInitial {
		t.Errorf("without records: version %d, want %d", v, VersionInitial)
	}
	store.Spec.Audit.Routes[0].Records = &v1alpha1.RecordsSpec{DossierField: "/dossier"}
	if v := Build(store, nil, nil).Version; v != VersionRecords {
		t.Errorf("with records: version %d, want %d", v, VersionRecords)
	}
}

func TestBuildCarriesWebSocketRoutes(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{
			{Name: "live", Method: "GET", Path: "/live/{dossier}", Categories: []v1alpha1.DataCategory{"plan"}, Action: "read", AllowWebSocket: true},
			{Name: "plain", Method: "GET", Path: "/plain", Categories: []v1alpha1.DataCategory{"plan"}, Action: "read"},
		}}}}
	data, _, err := Encode(Build(store, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Routes[0].AllowWebSocket || doc.Routes[1].AllowWebSocket {
		t.Errorf("routes %+v", doc.Routes)
	}
	// A document without WebSocket routes encodes as before the field existed.
	if bytes.Contains(data[bytes.Index(data, []byte(`"plain"`)):], []byte("allowWebSocket")) {
		t.Errorf("allowWebSocket written for a route without it:\n%s", data)
	}
}

func TestAgreementInForceAt(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	mt := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(d)} }
	base := func() *v1alpha1.SharingAgreement {
		return &v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Name: "school"}, Spec: v1alpha1.SharingAgreementSpec{
			Partner:    v1alpha1.Partner{Type: v1alpha1.PartnerSchool, Name: "De Regenboog", Subjects: []v1alpha1.PartnerSubject{{Kind: v1alpha1.PartnerSubjectClient, Name: "lvs"}}},
			Direction:  v1alpha1.DirectionIngress,
			LegalBasis: v1alpha1.BasisConsent, Consent: &v1alpha1.Consent{Reference: "TOE-1"},
			Categories: []v1alpha1.DataCategory{"plan", "identity"}, Purpose: "Afstemming",
			ValidFrom: mt(-time.Hour), ValidUntil: mt(time.Hour),
		}}
	}
	cases := []struct {
		name    string
		mutate  func(*v1alpha1.SharingAgreement)
		refused string
		at      time.Duration
		want    string // "" means in force
	}{
		{"in force", nil, "", 0, ""},
		{"last second of the window", nil, "", time.Hour - time.Nanosecond, ""},
		{"window closed", nil, "", time.Hour, NotInForceExpired},
		{"not yet valid", nil, "", -2 * time.Hour, NotInForceNotYetValid},
		{"open-ended", func(a *v1alpha1.SharingAgreement) { a.Spec.ValidFrom, a.Spec.ValidUntil = nil, nil }, "", 1000 * time.Hour, ""},
		{"suspended", func(a *v1alpha1.SharingAgreement) { a.Spec.Suspended = true }, "", 0, NotInForceSuspended},
		{"withdrawn flag", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.Withdrawn = true }, "", 0, NotInForceConsentWithdrawn},
		{"withdrawnAt in the past, no flag", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.WithdrawnAt = mt(-time.Minute) }, "", 0, NotInForceConsentWithdrawn},
		{"withdrawal scheduled", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.WithdrawnAt = mt(time.Minute) }, "", 0, ""},
		{"withdrawal reached", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.WithdrawnAt = mt(time.Minute) }, "", time.Minute, NotInForceConsentWithdrawn},
		{"egress only", func(a *v1alpha1.SharingAgreement) { a.Spec.Direction = v1alpha1.DirectionEgress }, "", 0, NotInForceEgressOnly},
		{"default direction is egress", func(a *v1alpha1.SharingAgreement) { a.Spec.Direction = "" }, "", 0, NotInForceEgressOnly},
		{"refused by the operator", nil, "MinimisationViolated", 0, NotInForceRefused},
		{"vital interest review overdue", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent, a.Spec.ReviewDate = v1alpha1.BasisVitalInterest, nil, mt(30*time.Minute)
		}, "", 30 * time.Minute, NotInForceReviewOverdue},
		{"vital interest without review date", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent = v1alpha1.BasisVitalInterest, nil
		}, "", 0, NotInForceRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := base()
			if tc.mutate != nil {
				tc.mutate(a)
			}
			e := AgreementEntry(a, tc.refused)
			ok, why := e.InForceAt(t0.Add(tc.at))
			if ok != (tc.want == "") || why != tc.want {
				t.Errorf("InForceAt = %v, %q; want %q", ok, why, tc.want)
			}
		})
	}
	e := AgreementEntry(base(), "")
	if e.ConsentMode != v1alpha1.ConsentAgreement || e.ConsentReference != "TOE-1" || e.Categories[0] != "identity" {
		t.Errorf("entry %+v", e)
	}
}

func TestBuildCarriesActivities(t *testing.T) {
	store := &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{ProcessingActivity: "store-wide", Routes: []v1alpha1.AuditRoute{
			{Name: "r", Method: "GET", Path: "/a", Categories: []v1alpha1.DataCategory{"identity"}, Action: "read",
				ProcessingActivities: []v1alpha1.ActivityName{"survey", "care"}},
		}}},
	}
	role := v1alpha1.AccessRole{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: v1alpha1.AccessRoleSpec{ProcessingActivities: []v1alpha1.ActivityName{"survey"}}}
	agreement := AgreementEntry(&v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: v1alpha1.SharingAgreementSpec{ProcessingActivities: []v1alpha1.ActivityName{"care"}}}, "")
	doc := Build(store, []v1alpha1.AccessRole{role}, []Agreement{agreement})
	SetActivityIDs(&doc, []v1alpha1.ProcessingActivity{
		{ObjectMeta: metav1.ObjectMeta{Name: "survey"}, Spec: v1alpha1.ProcessingActivitySpec{RegisterID: "https://register.example/ceo"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unused"}, Spec: v1alpha1.ProcessingActivitySpec{RegisterID: "u"}},
	})
	if got := doc.Routes[0].Activities; len(got) != 2 || got[0] != "care" || got[1] != "survey" {
		t.Errorf("route activities %v; want sorted [care survey]", got)
	}
	if got := doc.Roles[0].Activities; len(got) != 1 || got[0] != "survey" {
		t.Errorf("role activities %v", got)
	}
	if got := doc.Agreements[0].Activities; len(got) != 1 || got[0] != "care" {
		t.Errorf("agreement activities %v", got)
	}
	if len(doc.ActivityIDs) != 1 || doc.ActivityID("survey") != "https://register.example/ceo" {
		t.Errorf("activity IDs %v; want only the named, existing survey", doc.ActivityIDs)
	}
	if doc.ActivityID("care") != "care" || doc.ActivityID("") != "store-wide" {
		t.Errorf("ActivityID(care)=%q ActivityID(\"\")=%q; want the name, and the store's activity", doc.ActivityID("care"), doc.ActivityID(""))
	}
}
