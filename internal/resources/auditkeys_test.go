package resources

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

var keyNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func keyStore() *v1alpha1.DossierStore {
	return &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "wijkteam", UID: "u-1"}}
}

// The first version is active at once; a rotated one only after the
// activation delay, and the newest active one is what the proxy signs with.
func TestSigningRingRotate(t *testing.T) {
	one, v1, err := SigningRing{}.Rotate(keyNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || !v1.ActiveFrom.Equal(keyNow) || !v1.Created.Equal(keyNow) || one.Active(keyNow).Version != 1 {
		t.Fatalf("first version %d, active from %s; want 1, active at once", v1.Version, v1.ActiveFrom)
	}
	two, v2, err := one.Rotate(keyNow.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || !v2.ActiveFrom.Equal(keyNow.Add(time.Hour+SigningKeyActivationDelay)) || len(one.Versions) != 1 {
		t.Fatalf("second version %d active from %s (first ring now %d versions)", v2.Version, v2.ActiveFrom, len(one.Versions))
	}
	if v2.Key.Equal(v1.Key) {
		t.Fatal("a rotation made the same key")
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{keyNow.Add(time.Hour), 1},
		{v2.ActiveFrom.Add(-time.Second), 1},
		{v2.ActiveFrom, 2},
	} {
		if got := two.Active(tt.at); got == nil || got.Version != tt.want {
			t.Errorf("Active(%s) = %+v; want version %d", tt.at, got, tt.want)
		}
	}
	if two.Newest().Version != 2 || !two.NextRotation("P1Y").Equal(keyNow.Add(time.Hour).AddDate(1, 0, 0)) {
		t.Errorf("newest %d, next rotation %s", two.Newest().Version, two.NextRotation("P1Y"))
	}
	if !two.Has(v1.Key) || !two.Has(v2.Key) || len(two.PublicKeys()) != 2 {
		t.Error("the ring lost a version")
	}
}

// The Secret the operator writes is the directory the proxy reads, and the
// ring read back from it is the ring written.
func TestSigningSecretRoundTrip(t *testing.T) {
	ring, _, _ := SigningRing{}.Rotate(keyNow, nil)
	ring, _, _ = ring.Rotate(keyNow.Add(time.Hour), nil)
	secret, err := NewSigningSecret(keyStore(), ring)
	if err != nil {
		t.Fatal(err)
	}
	if secret.Name != "dossiers-audit-signing" || len(secret.OwnerReferences) != 1 || secret.Labels[LabelComponent] != "audit-signing" {
		t.Errorf("secret %s, owners %v, labels %v", secret.Name, secret.OwnerReferences, secret.Labels)
	}
	for name := range secret.Data {
		if !auditlog.IsSigningKeyFile(name) {
			t.Errorf("entry %s is not a file of the signing-key directory", name)
		}
	}
	back, err := ReadSigningRing(secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Versions) != 2 {
		t.Fatalf("read %d versions", len(back.Versions))
	}
	for i, v := range back.Versions {
		w := ring.Versions[i]
		if v.Version != w.Version || !v.Key.Equal(w.Key) || !v.ActiveFrom.Equal(w.ActiveFrom) || !v.Created.Equal(w.Created) {
			t.Errorf("version %d read back as %+v", w.Version, v)
		}
	}
	keys, err := auditlog.ParseSigningKeys(secret.Data)
	if err != nil {
		t.Fatal(err)
	}
	if active, err := auditlog.ActiveSigningKey(keys, keyNow.Add(time.Hour)); err != nil || active.Version != 1 {
		t.Errorf("the proxy would sign with %+v (%v); want version 1 until version 2 is active", active, err)
	}
	if _, err := WithSigningVersion(secret, ring.Versions[0]); err == nil || !strings.Contains(err.Error(), "version 1 exists") {
		t.Errorf("adding an existing version: %v; want it refused", err)
	}
	delete(secret.Annotations, annotationSigningCreatedPrefix+"2")
	if _, err := ReadSigningRing(secret); err == nil || !strings.Contains(err.Error(), annotationSigningCreatedPrefix+"2") {
		t.Errorf("a version without its creation time: %v; want an error naming the annotation", err)
	}
}

func TestRotationRequested(t *testing.T) {
	store := keyStore()
	secret := &corev1.Secret{}
	if RotationRequested(store, secret) {
		t.Error("a store without the annotation asks for a rotation")
	}
	store.Annotations = map[string]string{v1alpha1.AnnotationRotateSigningKey: "INC-2026-0042"}
	if !RotationRequested(store, secret) {
		t.Error("a new annotation value is not a rotation request")
	}
	secret = WithRotationHonoured(secret, store)
	if RotationRequested(store, secret) {
		t.Error("an honoured request asks again")
	}
	store.Annotations[v1alpha1.AnnotationRotateSigningKey] = "INC-2026-0043"
	if !RotationRequested(store, secret) {
		t.Error("a second value is not a second request")
	}
}

// A legacy audit-keys Secret is split without changing a key.
func TestSplitLegacyAuditKeys(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	privPEM, _ := auditlog.EncodePrivateKeyPEM(priv)
	pubPEM, _ := auditlog.EncodePublicKeyPEM(pub)
	pseudonym := bytes.Repeat([]byte{9}, 32)
	legacy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-audit-keys", CreationTimestamp: metav1.NewTime(keyNow.Add(-400 * 24 * time.Hour))},
		Data: map[string][]byte{LegacySigningKey: privPEM, LegacyVerifyKey: pubPEM, LegacyPseudonymKey: pseudonym}}
	ring, key, err := SplitLegacyAuditKeys(legacy)
	if err != nil {
		t.Fatal(err)
	}
	v := ring.Newest()
	if len(ring.Versions) != 1 || v.Version != 1 || !v.Key.Equal(priv) || !v.ActiveFrom.Equal(legacy.CreationTimestamp.Time) || !bytes.Equal(key, pseudonym) {
		t.Fatalf("split into %+v and a pseudonym key equal %v", ring.Versions, bytes.Equal(key, pseudonym))
	}
	if !LegacyKeysKept(legacy, ring, key) {
		t.Error("the split keys are not recognised as the legacy ones")
	}
	other, _, _ := SigningRing{}.Rotate(keyNow, nil)
	if LegacyKeysKept(legacy, other, key) || LegacyKeysKept(legacy, ring, bytes.Repeat([]byte{8}, 32)) {
		t.Error("other keys are taken for the legacy ones: the legacy Secret would be removed")
	}
	// Overdue at once for a key older than the period: the store rotates.
	if !keyNow.After(ring.NextRotation("P1Y")) {
		t.Errorf("a 400-day-old key is not due under P1Y (next %s)", ring.NextRotation("P1Y"))
	}
	delete(legacy.Data, LegacyPseudonymKey)
	if _, _, err := SplitLegacyAuditKeys(legacy); err == nil || !strings.HasPrefix(err.Error(), LegacyPseudonymKey+":") {
		t.Errorf("a legacy Secret without a pseudonym key: %v", err)
	}
}

func TestPseudonymSecret(t *testing.T) {
	key, err := NewPseudonymKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := NewPseudonymKey(nil)
	if bytes.Equal(key, again) {
		t.Error("two stores got the same pseudonymisation key")
	}
	s := NewPseudonymSecret(keyStore(), key)
	if s.Name != "dossiers-pseudonym" || len(s.Data) != 1 || !bytes.Equal(s.Data[PseudonymKey], key) || len(s.OwnerReferences) != 1 {
		t.Errorf("pseudonym Secret %s with %d entries", s.Name, len(s.Data))
	}
	if err := CheckPseudonymSecret(s.Data); err != nil {
		t.Error(err)
	}
	if err := CheckPseudonymSecret(map[string][]byte{PseudonymKey: make([]byte, 31)}); err == nil || !strings.HasPrefix(err.Error(), PseudonymKey+":") {
		t.Errorf("a short key: %v", err)
	}
	role := PseudonymReaderRole(keyStore())
	if *role.Name != "dossiers-pseudonym-reader" || len(role.Rules) != 1 {
		t.Fatalf("role %+v", role)
	}
	r := role.Rules[0]
	if len(r.ResourceNames) != 1 || r.ResourceNames[0] != "dossiers-pseudonym" || len(r.Verbs) != 1 || r.Verbs[0] != "get" || r.Resources[0] != "secrets" {
		t.Errorf("rule %+v; want get on exactly the pseudonym Secret", r)
	}
}

// An hour after a version became active, the private keys before it go;
// their public keys stay, and the ring still knows them.
func TestSigningKeysRetire(t *testing.T) {
	ring, v1, _ := SigningRing{}.Rotate(keyNow, nil)
	ring, v2, _ := ring.Rotate(keyNow.Add(time.Hour), nil)
	for _, tt := range []struct {
		at   time.Time
		want []int
	}{
		{keyNow.Add(2 * time.Hour), nil},
		{v2.ActiveFrom, nil},
		{v2.ActiveFrom.Add(SigningKeyRetireDelay - time.Second), nil},
		{v2.ActiveFrom.Add(SigningKeyRetireDelay), []int{1}},
	} {
		if got := ring.Retirable(tt.at); !slices.Equal(got, tt.want) {
			t.Errorf("Retirable(%s) = %v; want %v", tt.at, got, tt.want)
		}
	}
	secret, err := NewSigningSecret(keyStore(), ring)
	if err != nil {
		t.Fatal(err)
	}
	retired := WithRetiredKeys(secret, []int{1})
	if _, ok := retired.Data[auditlog.SigningKeyFile(1)]; ok || retired.Data[auditlog.SigningPublicFile(1)] == nil || retired.Data[auditlog.SigningActiveFromFile(1)] == nil {
		t.Fatalf("retired Secret entries %v; want signing-1.pub and .active-from without signing-1.key", keysOf(retired.Data))
	}
	if _, ok := secret.Data[auditlog.SigningKeyFile(1)]; !ok {
		t.Fatal("WithRetiredKeys changed the Secret it was given")
	}
	back, err := ReadSigningRing(retired)
	if err != nil {
		t.Fatal(err)
	}
	at := v2.ActiveFrom.Add(SigningKeyRetireDelay)
	if !back.Versions[0].Retired() || back.Versions[0].ID() != v1.ID() || !back.Has(v1.Key) || back.Active(at).Version != 2 || back.Retirable(at) != nil {
		t.Errorf("ring read back: %+v", back.Versions)
	}
	if len(back.PublicKeys()) != 2 || !back.PublicKeys()[0].Equal(v1.Public()) {
		t.Error("the retired version's public key is not kept")
	}
	if mem := ring.WithRetired([]int{1}); !mem.Versions[0].Retired() || ring.Versions[0].Retired() || mem.Versions[0].ID() != v1.ID() {
		t.Error("WithRetired: wrong version retired, or the ring it was given changed")
	}
	// A new version after retirement gets the next number, and an existing
	// number, retired or not, is never written again.
	next, v3, _ := back.Rotate(at, nil)
	if v3.Version != 3 || len(next.Versions) != 3 {
		t.Errorf("version after retirement: %d", v3.Version)
	}
	if _, err := WithSigningVersion(retired, SigningVersion{SigningKey: auditlog.SigningKey{Version: 1, Key: v3.Key, ActiveFrom: at}, Created: at}); err == nil {
		t.Error("a retired version's number was written again")
	}
}

func keysOf(m map[string][]byte) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
