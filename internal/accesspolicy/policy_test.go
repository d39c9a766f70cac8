package accesspolicy

import (
	"bytes"
	"math/rand"
	"testing"

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
	want, wantHash, err := Encode(Build(store, roles))
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
		got, hash, _ := Encode(Build(store, shuffled))
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
	if _, err := Decode([]byte(`{"version":2}`)); err == nil {
		t.Error("accepted an unknown version")
	}
}

func TestBuildCarriesWebSocketRoutes(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{
			{Name: "live", Method: "GET", Path: "/live/{dossier}", Categories: []v1alpha1.DataCategory{"plan"}, Action: "read", AllowWebSocket: true},
			{Name: "plain", Method: "GET", Path: "/plain", Categories: []v1alpha1.DataCategory{"plan"}, Action: "read"},
		}}}}
	data, _, err := Encode(Build(store, nil))
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
