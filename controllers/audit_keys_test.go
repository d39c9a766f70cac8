package controllers_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// auditEvent is the i-th event of a test chain about subject (a pseudonym).
func auditEvent(i int, subject string) auditlog.Event {
	return auditlog.Event{Time: time.Date(2026, 12, 1, 9, 0, i, 0, time.UTC), TraceID: fmt.Sprintf("%032x", i+1), OperationID: fmt.Sprintf("%016x", i+1),
		ProcessingActivityID: "https://register.example/verwerkingen/wijkteam", DataSubject: subject, Actor: "coach-0042",
		Roles: []string{"wijkcoach"}, Action: auditlog.ActionRead, Categories: []string{"identity"}, Outcome: auditlog.OutcomeAllowed,
		Method: "GET", Route: "read-dossier", Status: 200}
}

// readSecret reads a Secret; nil when it does not exist.
func readSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := k8s.Get(context.Background(), key(ns, name), s)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		t.Fatal(err)
	}
	return s
}

// mountSecret writes the Secret's entries into dir as the kubelet does for
// a Secret volume (entries that went are removed).
func mountSecret(t *testing.T, dir string, s *corev1.Secret) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.Remove(filepath.Join(dir, e.Name()))
	}
	for name, data := range s.Data {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

// A store made before the keys were split has one Secret, <store>-audit-keys.
// The reconciler copies both keys unchanged into <store>-audit-signing and
// <store>-pseudonym, so that dossiers keep their pseudonyms and the chains
// signed before still verify with the kept public keys, and removes the old
// Secret once no pod mounts it any more.
func TestLegacyAuditKeysAreSplitUnchanged(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	privPEM, _ := auditlog.EncodePrivateKeyPEM(priv)
	pubPEM, _ := auditlog.EncodePublicKeyPEM(pub)
	pseudonymKey := bytes.Repeat([]byte{0x5a}, auditlog.PseudonymKeySize)
	legacy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-audit-keys", Namespace: ns,
		Labels: map[string]string{resources.LabelManagedBy: resources.ManagedByValue, resources.LabelComponent: "audit-keys"}},
		Data: map[string][]byte{"signing.key": privPEM, "signing.pub": pubPEM, "pseudonym.key": pseudonymKey}}
	if err := k8s.Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	// A pod injected before the split mounts the old Secret.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dossier-old", Namespace: ns, Labels: map[string]string{"app": "dossier"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}},
			Volumes: []corev1.Volume{{Name: "dossierguard-audit-keys", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: legacy.Name}}}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	oldPseudonym := auditlog.Pseudonymise(pseudonymKey, "123456782")
	oldLog := writeSignedLog(t, priv)

	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))

	p := readSecret(t, ns, "dossiers-pseudonym")
	if p == nil || !bytes.Equal(p.Data[resources.PseudonymKey], pseudonymKey) || len(p.Data) != 1 {
		t.Fatalf("pseudonym Secret %v does not hold exactly the old pseudonym key", p)
	}
	if auditlog.Pseudonymise(p.Data[resources.PseudonymKey], "123456782") != oldPseudonym {
		t.Fatal("the dossier's pseudonym changed with the split")
	}
	ring, err := resources.ReadSigningRing(readSecret(t, ns, "dossiers-audit-signing"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.Versions) != 1 || !ring.Versions[0].Key.Equal(priv) {
		t.Fatalf("signing Secret holds %d versions; want the old key as version 1", len(ring.Versions))
	}
	if _, ok := readSecret(t, ns, "dossiers-audit-signing").Data[resources.PseudonymKey]; ok {
		t.Fatal("the signing Secret holds the pseudonym key")
	}
	keys, err := trustedKeys(ctx, ns, store.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := auditlog.VerifyWithOptions(bytes.NewReader(oldLog), auditlog.VerifyOptions{PublicKeys: keys}); err != nil || !res.OK {
		t.Fatalf("a chain signed before the split does not verify with the kept keys: %+v %v", res, err)
	}
	if st := getStore(t, store).Status; st.AuditSigningKey == nil || st.AuditSigningKey.KeyID != auditlog.KeyID(pub) ||
		st.AuditSigningSecretName != "dossiers-audit-signing" || st.PseudonymSecretName != "dossiers-pseudonym" {
		t.Fatalf("status %+v; want the old key in use from the split Secrets", st)
	}

	// The old pod still mounts the Secret: it stays, and goes with the pod.
	nudge(t, store)
	time.Sleep(time.Second)
	if readSecret(t, ns, legacy.Name) == nil {
		t.Fatal("the old Secret was removed while a pod mounts it")
	}
	if err := k8s.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, key(ns, pod.Name), &corev1.Pod{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod still there (%v)", err)
		}
		nudge(t, store)
		if readSecret(t, ns, legacy.Name) != nil {
			return fmt.Errorf("Secret %s is still there", legacy.Name)
		}
		return nil
	})
	p = readSecret(t, ns, "dossiers-pseudonym")
	if !bytes.Equal(p.Data[resources.PseudonymKey], pseudonymKey) {
		t.Fatal("the pseudonym key changed when the old Secret went")
	}
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionAuditKeyRotated, metav1.ConditionTrue, v1alpha1.ReasonAuditKeyCurrent))
}

// A store whose split Secrets disagree with the old one changes nothing and
// says so: no key is replaced, the old Secret stays.
func TestLegacyAuditKeysThatDisagreeAreKept(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	_, priv, _ := ed25519.GenerateKey(nil)
	privPEM, _ := auditlog.EncodePrivateKeyPEM(priv)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-audit-keys", Namespace: ns},
			Data: map[string][]byte{"signing.key": privPEM, "pseudonym.key": bytes.Repeat([]byte{1}, 32)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-pseudonym", Namespace: ns},
			Data: map[string][]byte{"pseudonym.key": bytes.Repeat([]byte{2}, 32)}},
	} {
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionAuditKeyRotated, metav1.ConditionFalse, v1alpha1.ReasonAuditKeysUnavailable))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDependencyUnavailable))
	if readSecret(t, ns, "dossiers-audit-keys") == nil || readSecret(t, ns, "dossiers-audit-signing") != nil {
		t.Fatal("keys were split or removed although the pseudonym keys disagree")
	}
	if p := readSecret(t, ns, "dossiers-pseudonym"); !bytes.Equal(p.Data["pseudonym.key"], bytes.Repeat([]byte{2}, 32)) {
		t.Fatal("the pseudonym key was replaced")
	}
	c := getStore(t, store).Status.Conditions
	for _, cond := range c {
		if cond.Type == v1alpha1.ConditionAuditKeyRotated && !strings.Contains(cond.Message, "dossiers-pseudonym") {
			t.Errorf("condition message %q does not name the Secret", cond.Message)
		}
	}
}

// A rotation asked for with the annotation adds a version whose public key
// is in the trust ConfigMap before the proxy can use it; the proxy, reading
// its mounted Secret, signs with the new key once it is active, without a
// restart. The chain written across the rotation verifies from the file and
// from the logbook, with the kept keys, also after the store is deleted.
func TestSigningKeyRotationVerifiesAcrossTheRotation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	storeName := ns + "/" + store.Name

	dir := t.TempDir()
	mountSecret(t, dir, readSecret(t, ns, "dossiers-audit-signing"))
	source := auditproxy.NewSigningKeySource(dir, fakeClock.Now, nil)
	first, err := source.Start()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: first, CheckpointEvery: 2, Chain: &auditlog.Chain{Store: storeName, Pod: "dossier-0"}})
	if err != nil {
		t.Fatal(err)
	}
	subject := strings.Repeat("ab", 32)
	seq := 0
	appendEvents := func(n int) {
		for range n {
			if err := w.Append(ctx, auditEvent(seq, subject)); err != nil {
				t.Fatal(err)
			}
			seq++
		}
	}
	appendEvents(3)

	// Rotate now.
	live := getStore(t, store)
	patch := client.MergeFrom(live.DeepCopy())
	live.Annotations = map[string]string{v1alpha1.AnnotationRotateSigningKey: "INC-2026-0042"}
	if err := k8s.Patch(ctx, live, patch); err != nil {
		t.Fatal(err)
	}
	var pending string
	eventually(t, timeout, func() error {
		k := getStore(t, store).Status.AuditSigningKey
		if k == nil || k.Versions != 2 || k.PendingKeyID == "" || k.KeyID != auditlog.KeyID(first.Public().(ed25519.PublicKey)) {
			return fmt.Errorf("auditSigningKey %+v; want version 1 in use and version 2 pending", k)
		}
		pending = k.PendingKeyID
		return nil
	})
	secret := readSecret(t, ns, "dossiers-audit-signing")
	ring, err := resources.ReadSigningRing(secret)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := trustedKeys(ctx, ns, store.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.Versions) != 2 || len(trusted) != 2 || ring.Newest().ID() != pending {
		t.Fatalf("%d versions, %d trusted keys; want 2 and 2, the newest %s", len(ring.Versions), len(trusted), pending)
	}
	// The same annotation value again is not another rotation.
	nudge(t, store)
	time.Sleep(time.Second)
	if k := getStore(t, store).Status.AuditSigningKey; k.Versions != 2 {
		t.Fatalf("%d versions after a nudge; the request was honoured twice", k.Versions)
	}

	// The kubelet updates the volume; the new version is not active yet.
	mountSecret(t, dir, secret)
	source.Check(w.SetSigningKey)
	if id := w.SigningKeyID(); id == pending {
		t.Fatal("the proxy signs with the new key before it is active")
	}
	appendEvents(2)

	fakeClock.Step(resources.SigningKeyActivationDelay + time.Second)
	t.Cleanup(func() { fakeClock.Step(-resources.SigningKeyActivationDelay - time.Second) })
	source.Check(w.SetSigningKey)
	if id := w.SigningKeyID(); id != pending {
		t.Fatalf("the proxy signs with %s once the new key is active; want %s", id, pending)
	}
	appendEvents(3)
	chainID := w.ChainID()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	nudge(t, store)
	eventually(t, timeout, func() error {
		k := getStore(t, store).Status.AuditSigningKey
		if k == nil || k.KeyID != pending || k.PendingKeyID != "" || k.Version != 2 {
			return fmt.Errorf("auditSigningKey %+v; want version 2 in use", k)
		}
		return nil
	})

	// An hour after version 2 took over, version 1's private key goes; its
	// public key stays, in the Secret and in the trust ConfigMap.
	fakeClock.Step(resources.SigningKeyRetireDelay)
	t.Cleanup(func() { fakeClock.Step(-resources.SigningKeyRetireDelay) })
	nudge(t, store)
	eventually(t, timeout, func() error {
		s := readSecret(t, ns, "dossiers-audit-signing")
		if _, ok := s.Data[auditlog.SigningKeyFile(1)]; ok {
			return fmt.Errorf("signing-1.key is still in the Secret")
		}
		if s.Data[auditlog.SigningPublicFile(1)] == nil || s.Data[auditlog.SigningKeyFile(2)] == nil {
			return fmt.Errorf("the Secret lost more than version 1's private key: %d entries", len(s.Data))
		}
		return nil
	})
	mountSecret(t, dir, readSecret(t, ns, "dossiers-audit-signing"))
	if k, err := source.Load(); err != nil || k.ID() != pending {
		t.Fatalf("the proxy reads %+v (%v) from the Secret with version 1 retired; want version 2", k, err)
	}
	if k := getStore(t, store).Status.AuditSigningKey; k == nil || k.KeyID != pending || k.Versions != 2 {
		t.Fatalf("auditSigningKey %+v after retirement", k)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*auditlog.Record
	signedBy := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		r, err := auditlog.ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		if r.Type == auditlog.TypeCheckpoint {
			signedBy[r.KeyID]++
		}
	}
	if len(signedBy) != 2 || signedBy[pending] == 0 {
		t.Fatalf("checkpoints signed by %v; want both keys", signedBy)
	}
	verifyFile := func(keys []ed25519.PublicKey) auditlog.Result {
		res, err := auditlog.VerifyWithOptions(bytes.NewReader(data), auditlog.VerifyOptions{PublicKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := verifyFile(trusted); !res.OK || res.Events != 8 {
		t.Fatalf("the chain across the rotation does not verify with the kept keys: %+v", res)
	}
	if res := verifyFile(trusted[:1]); res.OK {
		t.Fatal("the chain verifies with one key only: the new key's checkpoints were not checked")
	}

	// The logbook, trusting what the ConfigMap holds (--trust-key-dir).
	admin := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, admin, "lb_rot_")
	pool := testenv.PostgresSchemaPool(t, schema)
	if _, err := logbook.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	lb, err := logbook.New(ctx, pool, logbook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range trusted {
		if err := lb.TrustKey(ctx, storeName, k); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := lb.Ingest(ctx, auditlog.ExportRequest(storeName, "dossier-0", chainID, recs)); err != nil || res.Stored != len(recs) {
		t.Fatalf("Ingest across the rotation: %+v %v", res, err)
	}
	verifyLogbook := func() {
		t.Helper()
		verdicts, err := logbook.VerifyChains(ctx, pool, logbook.VerifyFilter{Store: storeName})
		if err != nil {
			t.Fatal(err)
		}
		if len(verdicts) != 1 || !verdicts[0].Result.OK || verdicts[0].Result.Events != 8 {
			t.Fatalf("logbook verdicts %+v; want the one chain OK with 8 events", verdicts)
		}
	}
	verifyLogbook()

	// The store goes, and with it (the garbage collector, played by the
	// test) its Secrets; the kept keys still verify the chain.
	if err := k8s.Delete(ctx, getStore(t, store)); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, key(ns, store.Name), &v1alpha1.DossierStore{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("store still there (%v)", err)
		}
		return nil
	})
	for _, name := range []string{"dossiers-audit-signing", "dossiers-pseudonym"} {
		if s := readSecret(t, ns, name); s != nil {
			if err := k8s.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
	}
	kept, err := trustedKeys(ctx, ns, store.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res := verifyFile(kept); !res.OK || res.Events != 8 {
		t.Fatalf("after the store is deleted, the chain does not verify with the kept keys: %+v", res)
	}
	verifyLogbook()
}

// A signing Secret whose every private key was removed by hand is not
// replaced (older logs depend on its public keys) and fails the control.
func TestSigningSecretWithoutPrivateKeysIsKept(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	s := readSecret(t, ns, "dossiers-audit-signing")
	pub := s.Data[auditlog.SigningPublicFile(1)]
	delete(s.Data, auditlog.SigningKeyFile(1))
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionAuditKeyRotated, metav1.ConditionFalse, v1alpha1.ReasonAuditKeysUnavailable))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDependencyUnavailable))
	s = readSecret(t, ns, "dossiers-audit-signing")
	if _, ok := s.Data[auditlog.SigningKeyFile(1)]; ok || !bytes.Equal(s.Data[auditlog.SigningPublicFile(1)], pub) || len(s.Data) != 2 {
		t.Fatalf("the signing Secret was changed: %d entries", len(s.Data))
	}
}
