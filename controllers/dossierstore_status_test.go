package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

func statusStore() *v1alpha1.DossierStore {
	return &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: "jgz", Namespace: "zorg", Generation: 4},
		Spec: v1alpha1.DossierStoreSpec{
			Service:  v1alpha1.ServiceYouthAndFamilyCentre,
			Storage:  v1alpha1.StorageSpec{StorageClassName: "encrypted-gp3", Size: "10Gi"},
			Workload: v1alpha1.WorkloadSpec{ServiceAccountName: "casemanager", AppPort: 8080},
		},
	}
}

var (
	verifiedClass = compliance.VerifyStorageClass("encrypted-gp3", &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "encrypted-gp3"}, Provisioner: "ebs.csi.aws.com",
		Parameters: map[string]string{"encrypted": "true"}})
	attestedClass = compliance.VerifyStorageClass("local", &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "local", Annotations: map[string]string{"privacy.dossierguard.io/encrypted-at-rest": "true"}},
		Provisioner: "rancher.io/local-path"})
	plainClass = compliance.VerifyStorageClass("standard", &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "standard"}, Provisioner: "rancher.io/local-path"})
	missingClass = compliance.VerifyStorageClass("gone", nil)
)

// convergedFacts is a store whose every step succeeded.
func convergedFacts() storeFacts {
	return storeFacts{
		now:           statusNow,
		encryption:    verifiedClass,
		key:           compliance.KeyFacts{Secret: "jgz-datakey", Version: 2, Versions: 2, NextRotation: statusNow.AddDate(0, 0, 30)},
		keyAccess:     true,
		claim:         true,
		isolation:     true,
		roles:         []compliance.RoleSummary{{Name: "wijkteam-read", Enforceable: true}},
		policyApplied: true,
		agreements:    &v1alpha1.AgreementSummary{InForce: 1, NotInForce: 1, Reasons: map[string]int32{"Expired": 1}},
		retention:     compliance.StoreRetentionControl([]compliance.RetentionOutcome{{Name: "contacts", Result: "Pass", Reason: "RunSucceeded"}}),
		auditKeys: compliance.AuditKeyFacts{SigningSecret: "jgz-audit-signing", PseudonymSecret: "jgz-pseudonym", KeyID: "0123456789abcdef",
			Version: 2, Created: statusNow.AddDate(0, -1, 0), Versions: 2, NextRotation: statusNow.AddDate(0, 11, 0)},
		audit:      compliance.AuditControl(nil, 2, true, statusTransport),
		transport:  statusTransport,
		requests:   compliance.DataSubjectRightsControl(nil),
		apiServer:  true,
		activities: map[string]bool{"ondersteuning": true},
	}
}

// statusTransport: the proxy serves TLS with an issued certificate.
var statusTransport = compliance.ProxyTransport{TLS: true, Secret: "jgz-proxy-tls", Issued: true, NotAfter: statusNow.AddDate(0, 0, 60)}

func TestSetStoreStatusConverged(t *testing.T) {
	store := statusStore()
	f := convergedFacts()
	setStoreStatus(store, f)
	st := &store.Status

	if st.ObservedGeneration != 4 || st.Encryption != "Verified" || st.KeySecretName != "jgz-datakey" || st.KeyVersion != 2 ||
		st.ClaimName != "jgz-dossiers" || st.AuditSigningSecretName != "jgz-audit-signing" || st.PseudonymSecretName != "jgz-pseudonym" {
		t.Errorf("status fields = generation %d, encryption %q, key %q v%d, claim %q, audit keys %q and %q",
			st.ObservedGeneration, st.Encryption, st.KeySecretName, st.KeyVersion, st.ClaimName, st.AuditSigningSecretName, st.PseudonymSecretName)
	}
	if k := st.AuditSigningKey; k == nil || k.KeyID != "0123456789abcdef" || k.Version != 2 || k.Versions != 2 ||
		!k.Created.Time.Equal(f.auditKeys.Created) || !k.NextRotation.Time.Equal(f.auditKeys.NextRotation) || k.PendingKeyID != "" || k.PendingActiveFrom != nil {
		t.Errorf("auditSigningKey = %+v; want key 0123456789abcdef, version 2 of 2, its creation and next rotation, nothing pending", k)
	}
	if st.NextKeyRotation == nil || !st.NextKeyRotation.Time.Equal(f.key.NextRotation) {
		t.Errorf("nextKeyRotation = %v; want %s", st.NextKeyRotation, f.key.NextRotation)
	}
	if st.Agreements != f.agreements {
		t.Errorf("agreements = %+v; want the summary %+v", st.Agreements, f.agreements)
	}
	wantControls := []string{"EncryptionAtRest", "KeyManagement", "KeyAccessRestricted", "NetworkSegregation",
		"AccessControlDefined", "Minimisation", "SharingEnforced", "EgressGated", "RetentionEnforced", "AuditActive", "AuditSigningKey", "DataSubjectRights"}
	if got := controlNames(st.Compliance); !slices.Equal(got, wantControls) {
		t.Fatalf("compliance rows = %v; want %v", got, wantControls)
	}
	for _, c := range st.Compliance {
		if c.Result != "Pass" || c.Reference == "" {
			t.Errorf("%s = %s (%s), reference %q; want Pass with a reference", c.Control, c.Result, c.Message, c.Reference)
		}
	}
	evidence := map[string]string{
		"EncryptionAtRest":     "PersistentVolumeClaim/jgz-dossiers",
		"KeyManagement":        "Secret/jgz-datakey: key version 2",
		"KeyAccessRestricted":  "Role/jgz-workload",
		"NetworkSegregation":   "NetworkPolicy/jgz-isolation",
		"AccessControlDefined": "ConfigMap/jgz-access-policy",
		"RetentionEnforced":    "RetentionPolicy/contacts: Pass (RunSucceeded)",
	}
	for _, c := range st.Compliance {
		if want, ok := evidence[c.Control]; ok && !slices.Contains(c.Evidence, want) {
			t.Errorf("%s evidence %q lacks %q", c.Control, c.Evidence, want)
		}
	}
	if m := st.Compliance[1].Message; !strings.Contains(m, "version 2") {
		t.Errorf("KeyManagement message %q does not name the key version", m)
	}
	if m := st.Compliance[2].Message; !strings.Contains(m, `"casemanager"`) {
		t.Errorf("KeyAccessRestricted message %q does not name the workload's ServiceAccount", m)
	}
	if m := st.Compliance[3].Message; !strings.Contains(m, "port 8443") {
		t.Errorf("NetworkSegregation message %q does not name the default proxy port", m)
	}
	if m := st.Compliance[5].Message; !strings.Contains(m, "all 2 sharing agreement(s)") {
		t.Errorf("Minimisation message %q does not count in-force and other agreements", m)
	}

	for conditionType, want := range map[string]wantCondition{
		"EncryptionVerified":   {"True", "VerifiedByParameters", []string{`StorageClass "encrypted-gp3"`}},
		"VolumeProvisioned":    {"True", "ClaimApplied", []string{"PersistentVolumeClaim jgz-dossiers on StorageClass encrypted-gp3"}},
		"KeyRotated":           {"True", "KeyCurrent", []string{"version 2"}},
		"NetworkIsolated":      {"True", "DefaultDenyApplied", []string{"port 8443"}},
		"AuditActive":          {"True", "AllPodsAudited", []string{"all 2 workload pod(s)"}},
		"AuditKeyRotated":      {"True", "AuditKeyCurrent", []string{"key 0123456789abcdef (version 2 of 2"}},
		"Compliant":            {"True", "AllControlsPass", []string{"all 12 controls pass"}},
		"Ready":                {"True", "StoreReady", []string{"Verified storage", "data key version 2", "default-deny"}},
		"ActivityAssigned":     {"True", "ActivitiesFound", []string{"no audit routes"}},
		"BulkRoutesFilterable": {"True", "BulkRoutesFiltered", []string{"no restriction or objection in force reaches a route without {dossier}"}},
	} {
		assertCondition(t, st.Conditions, conditionType, 4, want)
	}
	if len(st.Conditions) != 10 {
		t.Errorf("conditions = %v; want ten", conditionTypes(st.Conditions))
	}

	// The same facts again change nothing: no write after convergence.
	before := store.Status.DeepCopy()
	setStoreStatus(store, f)
	if !equality.Semantic.DeepEqual(*before, store.Status) {
		t.Errorf("a second setStoreStatus with the same facts changed the status")
	}
}

func TestSetStoreStatus(t *testing.T) {
	dependency := wantCondition{"False", "DependencyUnavailable", []string{"not every child object could be applied"}}
	cases := []struct {
		name   string
		facts  func(*storeFacts)
		checks map[string]wantCondition
		// compliantNames is the control the Compliant message must name
		// first, "" when the store is compliant.
		compliantNames string
		status         func(t *testing.T, st *v1alpha1.DossierStoreStatus)
	}{
		{"unverified class withholds the claim", func(f *storeFacts) { f.encryption, f.claim = plainClass, false }, map[string]wantCondition{
			"EncryptionVerified": {"False", "NoEncryptionEvidence", []string{`StorageClass "standard"`}},
			"VolumeProvisioned":  {"False", "WithheldUntilEncryptionVerified", []string{"not verified to encrypt at rest"}},
			"Ready":              {"False", "EncryptionUnverified", []string{`StorageClass "standard"`, "no volume is created"}},
		}, "EncryptionAtRest", func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
			if st.Encryption != "Unverified" || st.ClaimName != "" {
				t.Errorf("encryption %q, claim %q; want Unverified and no claim", st.Encryption, st.ClaimName)
			}
			if ev := st.Compliance[0].Evidence; slices.Contains(ev, "PersistentVolumeClaim/jgz-dossiers") {
				t.Errorf("EncryptionAtRest evidence %q names a claim that is not created", ev)
			}
		}},
		{"missing class", func(f *storeFacts) { f.encryption, f.claim = missingClass, false }, map[string]wantCondition{
			"EncryptionVerified": {"False", "StorageClassNotFound", []string{`StorageClass "gone" does not exist`}},
			"VolumeProvisioned":  {"False", "WithheldUntilEncryptionVerified", nil},
			"Ready":              {"False", "EncryptionUnverified", []string{`"gone"`}},
		}, "EncryptionAtRest", nil},
		{"unverified class decides Ready before failed dependencies", func(f *storeFacts) {
			f.encryption, f.claim, f.isolation, f.key.Failed = plainClass, false, false, true
		}, map[string]wantCondition{"Ready": {"False", "EncryptionUnverified", nil}}, "EncryptionAtRest", nil},
		{"attested class", func(f *storeFacts) { f.encryption = attestedClass }, map[string]wantCondition{
			"EncryptionVerified": {"True", "AttestedByPlatformTeam", []string{"attested"}},
			"VolumeProvisioned":  {"True", "ClaimApplied", nil},
			"Ready":              {"True", "StoreReady", []string{"Attested storage"}},
		}, "", func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
			if st.Encryption != "Attested" {
				t.Errorf("encryption = %q; want Attested", st.Encryption)
			}
		}},
		{"claim not applied", func(f *storeFacts) { f.claim = false }, map[string]wantCondition{
			"VolumeProvisioned": {"False", "ClaimNotApplied", []string{"could not be applied"}},
			"Ready":             dependency,
		}, "", func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
			if st.ClaimName != "" {
				t.Errorf("claimName = %q; want none", st.ClaimName)
			}
		}},
		{"data key failed", func(f *storeFacts) { f.key.Failed = true }, map[string]wantCondition{
			"KeyRotated": {"False", "KeyRotationFailed", []string{"could not be created or rotated"}},
			"Ready":      dependency,
		}, "KeyManagement", func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
			if st.KeySecretName != "" || st.KeyVersion != 0 || st.NextKeyRotation != nil {
				t.Errorf("key fields = %q v%d next %v; want them cleared for a failed key", st.KeySecretName, st.KeyVersion, st.NextKeyRotation)
			}
		}},
		{"rotation due now", func(f *storeFacts) { f.key.NextRotation = statusNow }, map[string]wantCondition{
			"KeyRotated": {"False", "KeyRotationFailed", nil},
		}, "KeyManagement", nil},
		{"key access not applied", func(f *storeFacts) { f.keyAccess = false }, map[string]wantCondition{"Ready": dependency}, "KeyAccessRestricted", nil},
		{"isolation not applied", func(f *storeFacts) { f.isolation = false }, map[string]wantCondition{
			"NetworkIsolated": {"False", "IsolationNotApplied", []string{"default-deny NetworkPolicy"}},
			"Ready":           dependency,
		}, "NetworkSegregation", nil},
		{"access policy not applied", func(f *storeFacts) { f.policyApplied = false }, map[string]wantCondition{"Ready": dependency}, "", nil},
		{"audit keys missing", func(f *storeFacts) {
			f.auditKeys = compliance.AuditKeyFacts{SigningSecret: "jgz-audit-signing", PseudonymSecret: "jgz-pseudonym", Failed: true,
				Problem: "the signing keys in Secret jgz-audit-signing could not be kept, rotated or trusted"}
		}, map[string]wantCondition{
			"AuditKeyRotated": {"False", "AuditKeysUnavailable", []string{"Secret jgz-audit-signing could not be kept"}},
			"Ready":           dependency,
		}, "AuditSigningKey", func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
			if st.AuditSigningSecretName != "" || st.PseudonymSecretName != "" || st.AuditSigningKey != nil {
				t.Errorf("audit key fields = %q %q %+v; want none", st.AuditSigningSecretName, st.PseudonymSecretName, st.AuditSigningKey)
			}
		}},
		{"signing key overdue", func(f *storeFacts) { f.auditKeys.NextRotation = statusNow.Add(-2 * time.Hour) }, map[string]wantCondition{
			"AuditKeyRotated": {"False", "AuditKeyOverdue", []string{"0123456789abcdef", "was due for rotation"}},
			"Ready":           {"True", "StoreReady", nil},
		}, "AuditSigningKey", nil},
		{"signing key due within the grace", func(f *storeFacts) { f.auditKeys.NextRotation = statusNow.Add(-time.Minute) }, map[string]wantCondition{
			"AuditKeyRotated": {"True", "AuditKeyCurrent", nil},
		}, "", nil},
		{"a new signing key pending", func(f *storeFacts) {
			f.auditKeys.PendingKeyID, f.auditKeys.PendingActiveFrom, f.auditKeys.Versions = "fedcba9876543210", statusNow.Add(3*time.Minute), 3
		}, map[string]wantCondition{
			"AuditKeyRotated": {"True", "AuditKeyCurrent", []string{"key fedcba9876543210 takes over at"}},
		}, "", func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
			k := st.AuditSigningKey
			if k == nil || k.KeyID != "0123456789abcdef" || k.PendingKeyID != "fedcba9876543210" || k.PendingActiveFrom == nil || k.Versions != 3 {
				t.Errorf("auditSigningKey = %+v; want the key in use and the pending one", k)
			}
		}},
		{"a pod without the audit proxy", func(f *storeFacts) { f.audit = compliance.AuditControl([]string{"app-7d9"}, 2, true, statusTransport) }, map[string]wantCondition{
			"AuditActive": {"False", "PodsWithoutAuditProxy", []string{"1 of 2", "app-7d9"}},
			"Ready":       {"True", "StoreReady", nil},
		}, "AuditActive", nil},
		{"pods not listed", func(f *storeFacts) { f.audit = compliance.AuditControl(nil, 0, false, statusTransport) }, map[string]wantCondition{
			"AuditActive": {"False", "PodsNotListed", nil},
		}, "AuditActive", nil},
		{"no access roles", func(f *storeFacts) { f.roles = nil }, map[string]wantCondition{
			"Ready": {"True", "StoreReady", nil},
		}, "AccessControlDefined", nil},
		{"an agreement shares too much", func(f *storeFacts) { f.violating = []string{"school"} }, nil, "Minimisation",
			func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
				if ev := st.Compliance[5].Evidence; !slices.Equal(ev, []string{"SharingAgreement/school"}) {
					t.Errorf("Minimisation evidence = %q", ev)
				}
			}},
		{"no agreements", func(f *storeFacts) { f.agreements = nil }, map[string]wantCondition{"Compliant": {"True", "AllControlsPass", nil}}, "",
			func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
				if st.Agreements != nil || !strings.Contains(st.Compliance[5].Message, "all 0 sharing agreement(s)") {
					t.Errorf("agreements %+v, Minimisation %q; want none counted", st.Agreements, st.Compliance[5].Message)
				}
			}},
		{"a per-dossier agreement without a consent source", func(f *storeFacts) {
			f.proxied = []compliance.ProxyAgreement{{Name: "school", Admitted: true, PerDossier: true}}
		}, map[string]wantCondition{"Ready": {"True", "StoreReady", nil}}, "SharingEnforced",
			func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
				if c := st.Compliance[6]; c.Reason != v1alpha1.ReasonConsentSourceMissing || !slices.Equal(c.Evidence, []string{"SharingAgreement/school"}) {
					t.Errorf("SharingEnforced = %s %q %v", c.Reason, c.Message, c.Evidence)
				}
			}},
		{"partner agreements enforced by the proxy", func(f *storeFacts) {
			f.proxied = []compliance.ProxyAgreement{{Name: "huisarts", Admitted: true}}
		}, map[string]wantCondition{"Compliant": {"True", "AllControlsPass", nil}}, "",
			func(t *testing.T, st *v1alpha1.DossierStoreStatus) {
				if c := st.Compliance[6]; c.Reason != v1alpha1.ReasonAgreementsEnforced || !slices.Contains(c.Evidence, "ConfigMap/jgz-access-policy") {
					t.Errorf("SharingEnforced = %s %v", c.Reason, c.Evidence)
				}
			}},
		{"no retention policy", func(f *storeFacts) { f.retention = compliance.StoreRetentionControl(nil) }, nil, "RetentionEnforced", nil},
		{"the first failing control is named", func(f *storeFacts) {
			f.isolation, f.audit = false, compliance.AuditControl([]string{"app"}, 1, true, statusTransport)
		}, nil, "NetworkSegregation", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			f := convergedFacts()
			tc.facts(&f)
			setStoreStatus(store, f)
			for conditionType, want := range tc.checks {
				assertCondition(t, store.Status.Conditions, conditionType, 4, want)
			}
			if tc.compliantNames == "" {
				assertCondition(t, store.Status.Conditions, "Compliant", 4, wantCondition{"True", "AllControlsPass", []string{"all 12 controls pass"}})
			} else {
				assertCondition(t, store.Status.Conditions, "Compliant", 4, wantCondition{"False", "ControlFailed", []string{tc.compliantNames + " (AVG art."}})
			}
			if len(store.Status.Conditions) != 10 || len(store.Status.Compliance) != 12 {
				t.Errorf("conditions %v and %d compliance rows; want ten and twelve", conditionTypes(store.Status.Conditions), len(store.Status.Compliance))
			}
			if tc.status != nil {
				tc.status(t, &store.Status)
			}
		})
	}
}

// TestSetStoreStatusProxyPort: the condition and the control name the
// store's own proxy port.
func TestSetStoreStatusProxyPort(t *testing.T) {
	store := statusStore()
	store.Spec.Workload.ProxyPort = 9443
	setStoreStatus(store, convergedFacts())
	assertCondition(t, store.Status.Conditions, "NetworkIsolated", 4, wantCondition{"True", "DefaultDenyApplied", []string{"port 9443"}})
	if m := store.Status.Compliance[3].Message; !strings.Contains(m, "port 9443") {
		t.Errorf("NetworkSegregation message %q does not name the proxy port", m)
	}
}

// TestSetStoreStatusClearsStaleFields: what an earlier reconcile reported
// goes when the facts no longer support it.
func TestSetStoreStatusClearsStaleFields(t *testing.T) {
	store := statusStore()
	setStoreStatus(store, convergedFacts())
	store.Generation = 5
	f := convergedFacts()
	f.encryption, f.claim, f.key.Failed, f.auditKeys = plainClass, false, true, compliance.AuditKeyFacts{Failed: true}
	setStoreStatus(store, f)
	st := store.Status
	if st.ClaimName != "" || st.KeySecretName != "" || st.KeyVersion != 0 || st.NextKeyRotation != nil || st.AuditSigningSecretName != "" || st.AuditSigningKey != nil {
		t.Errorf("stale fields kept: claim %q, key %q v%d next %v, audit keys %q %+v",
			st.ClaimName, st.KeySecretName, st.KeyVersion, st.NextKeyRotation, st.AuditSigningSecretName, st.AuditSigningKey)
	}
	if st.ObservedGeneration != 5 {
		t.Errorf("observedGeneration = %d; want 5", st.ObservedGeneration)
	}
	assertCondition(t, st.Conditions, "Ready", 5, wantCondition{"False", "EncryptionUnverified", nil})
	assertCondition(t, st.Conditions, "VolumeProvisioned", 5, wantCondition{"False", "WithheldUntilEncryptionVerified", nil})
}

func TestSetEncryptionCondition(t *testing.T) {
	cases := []struct {
		name       string
		encryption compliance.Encryption
		want       wantCondition
	}{
		{"verified", verifiedClass, wantCondition{"True", "VerifiedByParameters", []string{`StorageClass "encrypted-gp3" encrypts at rest`}}},
		{"attested", attestedClass, wantCondition{"True", "AttestedByPlatformTeam", []string{`StorageClass "local"`}}},
		{"unverified", plainClass, wantCondition{"False", "NoEncryptionEvidence", []string{`StorageClass "standard"`}}},
		{"missing", missingClass, wantCondition{"False", "StorageClassNotFound", []string{`"gone"`}}},
		{"no method", compliance.Encryption{Reason: "Unknown", Message: "not verified"}, wantCondition{"False", "Unknown", nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			setEncryptionCondition(store, tc.encryption)
			assertCondition(t, store.Status.Conditions, "EncryptionVerified", 4, tc.want)
		})
	}
}

func TestSetVolumeCondition(t *testing.T) {
	cases := []struct {
		name       string
		encryption compliance.Encryption
		claim      bool
		want       wantCondition
	}{
		{"applied on a verified class", verifiedClass, true, wantCondition{"True", "ClaimApplied", []string{"PersistentVolumeClaim jgz-dossiers on StorageClass encrypted-gp3"}}},
		{"applied on an attested class", attestedClass, true, wantCondition{"True", "ClaimApplied", []string{"jgz-dossiers"}}},
		{"not applied", verifiedClass, false, wantCondition{"False", "ClaimNotApplied", []string{"could not be applied"}}},
		{"withheld on an unverified class", plainClass, false, wantCondition{"False", "WithheldUntilEncryptionVerified", []string{"PersistentVolumeClaim", "not verified"}}},
		{"withheld even if a claim were reported", plainClass, true, wantCondition{"False", "WithheldUntilEncryptionVerified", nil}},
		{"withheld on a missing class", missingClass, false, wantCondition{"False", "WithheldUntilEncryptionVerified", nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			f := convergedFacts()
			f.encryption, f.claim = tc.encryption, tc.claim
			setVolumeCondition(store, f)
			assertCondition(t, store.Status.Conditions, "VolumeProvisioned", 4, tc.want)
		})
	}
}

func TestSetKeyCondition(t *testing.T) {
	cases := []struct {
		name string
		key  compliance.KeyFacts
		want wantCondition
	}{
		{"current", compliance.KeyFacts{Secret: "jgz-datakey", Version: 3, Versions: 3, NextRotation: statusNow.Add(time.Minute)},
			wantCondition{"True", "KeyCurrent", []string{"version 3", "next rotation 2026-03-15T12:01:00Z"}}},
		{"due exactly now", compliance.KeyFacts{Secret: "jgz-datakey", Version: 3, Versions: 3, NextRotation: statusNow},
			wantCondition{"False", "KeyRotationFailed", []string{"on time"}}},
		{"failed", compliance.KeyFacts{Secret: "jgz-datakey", Failed: true},
			wantCondition{"False", "KeyRotationFailed", []string{"see the operator's events"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			setKeyCondition(store, tc.key, statusNow)
			assertCondition(t, store.Status.Conditions, "KeyRotated", 4, tc.want)
		})
	}
}

func TestSetIsolationCondition(t *testing.T) {
	cases := []struct {
		name    string
		port    int32
		applied bool
		want    wantCondition
	}{
		{"applied", 0, true, wantCondition{"True", "DefaultDenyApplied", []string{"audit proxy on port 8443"}}},
		{"applied with another proxy port", 9443, true, wantCondition{"True", "DefaultDenyApplied", []string{"port 9443"}}},
		{"not applied", 0, false, wantCondition{"False", "IsolationNotApplied", []string{"could not be applied"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			store.Spec.Workload.ProxyPort = tc.port
			setIsolationCondition(store, tc.applied, statusTransport)
			assertCondition(t, store.Status.Conditions, "NetworkIsolated", 4, tc.want)
		})
	}
}

func TestSetStoreReadyCondition(t *testing.T) {
	dependency := wantCondition{"False", "DependencyUnavailable", []string{"see the conditions"}}
	cases := []struct {
		name  string
		facts func(*storeFacts)
		want  wantCondition
	}{
		{"ready", func(*storeFacts) {}, wantCondition{"True", "StoreReady", []string{"Verified storage with data key version 2"}}},
		{"ready on attested storage", func(f *storeFacts) { f.encryption = attestedClass }, wantCondition{"True", "StoreReady", []string{"Attested storage"}}},
		{"unverified class", func(f *storeFacts) { f.encryption = plainClass }, wantCondition{"False", "EncryptionUnverified", []string{`StorageClass "standard"`}}},
		{"key failed", func(f *storeFacts) { f.key.Failed = true }, dependency},
		{"key access", func(f *storeFacts) { f.keyAccess = false }, dependency},
		{"claim", func(f *storeFacts) { f.claim = false }, dependency},
		{"isolation", func(f *storeFacts) { f.isolation = false }, dependency},
		{"access policy", func(f *storeFacts) { f.policyApplied = false }, dependency},
		{"audit keys", func(f *storeFacts) { f.auditKeys.Failed = true }, dependency},
		{"no signing key yet", func(f *storeFacts) { f.auditKeys.KeyID = "" }, dependency},
		{"failing controls do not make a store unready", func(f *storeFacts) {
			f.roles, f.violating, f.retention = nil, []string{"x"}, compliance.StoreRetentionControl(nil)
		}, wantCondition{"True", "StoreReady", nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			f := convergedFacts()
			tc.facts(&f)
			setStoreReadyCondition(store, f)
			assertCondition(t, store.Status.Conditions, "Ready", 4, tc.want)
		})
	}
}

func TestAgreementCount(t *testing.T) {
	for _, tc := range []struct {
		summary *v1alpha1.AgreementSummary
		want    int
	}{
		{nil, 0},
		{&v1alpha1.AgreementSummary{}, 0},
		{&v1alpha1.AgreementSummary{InForce: 2}, 2},
		{&v1alpha1.AgreementSummary{InForce: 2, NotInForce: 3, Reasons: map[string]int32{"Expired": 3}}, 5},
	} {
		if got := agreementCount(tc.summary); got != tc.want {
			t.Errorf("agreementCount(%+v) = %d; want %d", tc.summary, got, tc.want)
		}
	}
}

// TestSetRouteActivityCondition: ActivityAssigned summarises the store's
// routes; a route without activities, or naming one that does not exist,
// is a warning that leaves Ready and Compliant as they are; activities that
// could not be listed make it Unknown.
func TestSetRouteActivityCondition(t *testing.T) {
	route := func(name string, activities ...v1alpha1.ActivityName) v1alpha1.AuditRoute {
		return v1alpha1.AuditRoute{Name: name, Method: "GET", Path: "/api/" + name, Action: v1alpha1.ActionRead,
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}, ProcessingActivities: activities}
	}
	known := map[string]bool{"ondersteuning": true}
	for _, tc := range []struct {
		name   string
		routes []v1alpha1.AuditRoute
		known  map[string]bool
		want   wantCondition
	}{
		{"every route serves an activity", []v1alpha1.AuditRoute{route("list", "ondersteuning")}, known,
			wantCondition{"True", v1alpha1.ReasonActivitiesFound, []string{"1 audit routes"}}},
		{"a route without activities", []v1alpha1.AuditRoute{route("list", "ondersteuning"), route("legacy")}, known,
			wantCondition{"False", v1alpha1.ReasonNoActivity, []string{"1 of 2", "legacy", "spec.audit.processingActivity"}}},
		{"a route naming a missing activity", []v1alpha1.AuditRoute{route("list", "opgeheven")}, known,
			wantCondition{"False", v1alpha1.ReasonActivityNotFound, []string{"opgeheven (route list)"}}},
		{"activities not listed", []v1alpha1.AuditRoute{route("list", "ondersteuning")}, nil,
			wantCondition{"Unknown", v1alpha1.ReasonActivitiesNotListed, []string{"could not be read"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := statusStore()
			store.Spec.Audit = &v1alpha1.AuditSpec{Routes: tc.routes}
			f := convergedFacts()
			f.activities = tc.known
			setStoreStatus(store, f)
			assertCondition(t, store.Status.Conditions, v1alpha1.ConditionActivityAssigned, 4, tc.want)
			// A warning only: the store is Ready and Compliant all the same.
			assertCondition(t, store.Status.Conditions, v1alpha1.ConditionReady, 4, wantCondition{"True", v1alpha1.ReasonStoreReady, nil})
			assertCondition(t, store.Status.Conditions, v1alpha1.ConditionCompliant, 4, wantCondition{"True", v1alpha1.ReasonAllControlsPass, nil})
		})
	}
}
