package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func testStore() *v1alpha1.DossierStore {
	return &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", UID: "uid-1"},
		Spec: v1alpha1.DossierStoreSpec{
			Workload: v1alpha1.WorkloadSpec{
				Selector:           metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
				ServiceAccountName: "app", AppPort: 8080, ProxyPort: 8443,
			},
			Storage: v1alpha1.StorageSpec{StorageClassName: "c", Size: "1Gi"},
		},
	}
}

// toSecret is the Secret created for ring.
func toSecret(t *testing.T, ring KeyRing) *corev1.Secret {
	t.Helper()
	return NewDataKeySecret(testStore(), ring)
}

func TestKeyRingRotationRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	period := 24 * time.Hour
	ring := KeyRing{}
	if !ring.NeedsRotation(t0, period) {
		t.Fatal("an empty ring needs a first key")
	}
	ring, err := ring.Rotate(t0, bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if ring.NeedsRotation(t0.Add(23*time.Hour), period) || !ring.NeedsRotation(t0.Add(24*time.Hour), period) {
		t.Error("rotation due at the wrong time")
	}
	ring, err = ring.Rotate(t0.Add(24*time.Hour), bytes.NewReader(bytes.Repeat([]byte{2}, 32)))
	if err != nil {
		t.Fatal(err)
	}

	read, err := ReadKeyRing(toSecret(t, ring))
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Versions) != 2 || read.Current().Version != 2 || read.Versions[0].Key[0] != 1 || read.Versions[1].Key[0] != 2 {
		t.Fatalf("read back %+v", read.Versions)
	}
	if got := read.NextRotation(period); !got.Equal(t0.Add(48 * time.Hour)) {
		t.Errorf("next rotation %s", got)
	}
	if s := toSecret(t, ring); s.Annotations[AnnotationCurrentVersion] != "2" || s.Labels[LabelManagedBy] != ManagedByValue {
		t.Errorf("secret metadata %v %v", s.Annotations, s.Labels)
	}
}

func TestRotateFailsWithoutRandomness(t *testing.T) {
	if _, err := (KeyRing{}).Rotate(time.Now(), strings.NewReader("short")); err == nil {
		t.Error("a short random read must fail, not produce a weak key")
	}
	if _, err := (KeyRing{}).Rotate(time.Now(), errReader{}); err == nil {
		t.Error("a failing random source must fail")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestReadKeyRingRejectsDamagedSecretsWithoutQuotingKeys(t *testing.T) {
	secret := func(data map[string][]byte, annotations map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}, Data: data}
	}
	created := map[string]string{"privacy.dossierguard.io/key-created-1": "2026-01-01T00:00:00Z"}
	secretKey := bytes.Repeat([]byte("k"), 31)
	for name, s := range map[string]*corev1.Secret{
		"short key":       secret(map[string][]byte{"key-1": secretKey}, created),
		"bad version":     secret(map[string][]byte{"key-x": make([]byte, 32)}, created),
		"no created time": secret(map[string][]byte{"key-1": make([]byte, 32)}, nil),
	} {
		_, err := ReadKeyRing(s)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), string(secretKey)) {
			t.Errorf("%s: error quotes key material: %v", name, err)
		}
	}
	if ring, err := ReadKeyRing(nil); err != nil || ring.Current() != nil {
		t.Errorf("nil Secret: %v %v", ring, err)
	}
}

func TestIsolationPolicy(t *testing.T) {
	store := testStore()
	store.Spec.Workload.IngressNamespaces = []string{"ingress-nginx"}
	store.Spec.Workload.Dependencies = []v1alpha1.Dependency{{
		Name: "database", PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "postgres"}},
		Ports: []v1alpha1.NetworkPort{{Port: 5432}},
	}}
	data, _ := json.Marshal(IsolationPolicy(store, IsolationExtras{}, nil))
	got := string(data)
	for _, want := range []string{
		`"policyTypes":["Ingress","Egress"]`,
		`"podSelector":{"matchLabels":{"app":"a"}}`,
		`{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ns"}}}`,
		`{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ingress-nginx"}}}`,
		`"ports":[{"protocol":"TCP","port":8443}]`,
		`{"protocol":"UDP","port":53}`,
		`{"ports":[{"protocol":"TCP","port":5432}],"to":[{"podSelector":{"matchLabels":{"app":"postgres"}},"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ns"}}}]}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("policy lacks %s\n%s", want, got)
		}
	}
	if strings.Contains(got, "8080") {
		t.Error("the app port must not be opened")
	}
}

// A rotation adds one version to the Secret as read and keeps everything
// else in it, including entries it does not know.
func TestWithKeyVersionKeepsEveryEntry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ring, _ := KeyRing{}.Rotate(t0, bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	read := NewDataKeySecret(testStore(), ring)
	read.ResourceVersion = "42"
	read.Data["key-7"] = bytes.Repeat([]byte{7}, 32) // a version this ring did not see
	next, _ := ring.Rotate(t0.Add(time.Hour), bytes.NewReader(bytes.Repeat([]byte{2}, 32)))
	got := WithKeyVersion(read, *next.Current())
	if got.ResourceVersion != "42" {
		t.Error("the update lost the resourceVersion it must be conditional on")
	}
	if !bytes.Equal(got.Data["key-1"], read.Data["key-1"]) || !bytes.Equal(got.Data["key-7"], read.Data["key-7"]) || len(got.Data["key-2"]) != 32 {
		t.Errorf("entries after the rotation: %v", maps.Keys(got.Data))
	}
	if got.Annotations[AnnotationCurrentVersion] != "2" || len(read.Data) != 2 {
		t.Error("the current version did not move, or the Secret as read was changed in place")
	}
	unlabelled := got.DeepCopy()
	unlabelled.Labels = nil
	unlabelled.OwnerReferences = nil
	adopted, changed := AdoptKeySecret(unlabelled, testStore(), "data-key")
	if !changed || adopted.Labels[LabelManagedBy] != ManagedByValue || len(adopted.OwnerReferences) != 1 || !bytes.Equal(adopted.Data["key-7"], read.Data["key-7"]) {
		t.Errorf("adopting an unlabelled Secret: changed=%v labels=%v owners=%d", changed, adopted.Labels, len(adopted.OwnerReferences))
	}
	if _, changed := AdoptKeySecret(adopted, testStore(), "data-key"); changed {
		t.Error("adopting an adopted Secret changes it again")
	}
}
