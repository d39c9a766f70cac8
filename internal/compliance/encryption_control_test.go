package compliance

import (
	"slices"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVerifyStorageClassEdges covers what TestVerifyStorageClass leaves
// open: exact evidence, values that only look enabled, look-alike
// provisioners and the attestation's spelling.
func TestVerifyStorageClassEdges(t *testing.T) {
	class := func(provisioner string, params, annotations map[string]string) *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "ssd", Annotations: annotations}, Provisioner: provisioner, Parameters: params}
	}
	const attestation = "privacy.dossierguard.io/encrypted-at-rest"
	cases := []struct {
		name     string
		class    *storagev1.StorageClass
		method   string
		reason   string
		message  []string
		evidence []string
	}{
		{"verified evidence names the class, parameter and key", class("ebs.csi.aws.com", map[string]string{"encrypted": "true", "kmsKeyId": "arn:k", "type": "gp3"}, nil),
			"Verified", "VerifiedByParameters", []string{`StorageClass "ssd" encrypts at rest`, "ebs.csi.aws.com", "encrypted set"},
			[]string{"StorageClass/ssd: provisioner ebs.csi.aws.com, parameter encrypted=true", "StorageClass/ssd: key reference kmsKeyId=arn:k"}},
		{"value with spaces around true", class("ebs.csi.aws.com", map[string]string{"encrypted": " true "}, nil),
			"Verified", "VerifiedByParameters", nil, []string{"StorageClass/ssd: provisioner ebs.csi.aws.com, parameter encrypted= true "}},
		{"empty key reference is not evidence", class("ebs.csi.aws.com", map[string]string{"encrypted": "true", "kmsKeyId": ""}, nil),
			"Verified", "VerifiedByParameters", nil, []string{"StorageClass/ssd: provisioner ebs.csi.aws.com, parameter encrypted=true"}},
		{"key parameter that is the proof is listed once", class("pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": "projects/p/k"}, nil),
			"Verified", "VerifiedByParameters", nil, []string{"StorageClass/ssd: provisioner pd.csi.storage.gke.io, parameter disk-encryption-kms-key=projects/p/k"}},
		{"blank CMEK key proves nothing", class("pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": "  "}, nil),
			"Unverified", "NoEncryptionEvidence", []string{`StorageClass "ssd"`, "pd.csi.storage.gke.io", attestation},
			[]string{"StorageClass/ssd: provisioner pd.csi.storage.gke.io, parameters [disk-encryption-kms-key]"}},
		{"encrypted=1 is not true", class("ebs.csi.aws.com", map[string]string{"encrypted": "1"}, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner ebs.csi.aws.com, parameters [encrypted]"}},
		{"Azure disk without an encryption set", class("disk.csi.azure.com", map[string]string{"skuName": "Premium_LRS"}, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner disk.csi.azure.com, parameters [skuName]"}},
		{"parameter names listed sorted", class("example.com/csi", map[string]string{"z": "1", "a": "2", "m": "3"}, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner example.com/csi, parameters [a, m, z]"}},
		{"no parameters at all", class("example.com/csi", nil, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner example.com/csi, parameters []"}},
		{"look-alike Ceph provisioner without the dot", class("evilrbd.csi.ceph.com", map[string]string{"encrypted": "true"}, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner evilrbd.csi.ceph.com, parameters [encrypted]"}},
		{"provisioner names are case-sensitive", class("EBS.CSI.AWS.COM", map[string]string{"encrypted": "true"}, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner EBS.CSI.AWS.COM, parameters [encrypted]"}},
		{"Longhorn without its parameter", class("driver.longhorn.io", map[string]string{"csi.storage.k8s.io/provisioner-secret-name": "crypto"}, nil),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner driver.longhorn.io, parameters [csi.storage.k8s.io/provisioner-secret-name]"}},
		{"attestation in capitals", class("rancher.io/local-path", nil, map[string]string{attestation: "TRUE"}),
			"Attested", "AttestedByPlatformTeam", []string{`StorageClass "ssd" is attested`, "did not verify"},
			[]string{"StorageClass/ssd: annotation " + attestation + "=true (attested, not verified)"}},
		{"empty attestation", class("rancher.io/local-path", nil, map[string]string{attestation: ""}),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner rancher.io/local-path, parameters []"}},
		{"attestation under another key", class("rancher.io/local-path", nil, map[string]string{"encrypted-at-rest": "true"}),
			"Unverified", "NoEncryptionEvidence", nil, []string{"StorageClass/ssd: provisioner rancher.io/local-path, parameters []"}},
		{"failed parameters fall back to attestation", class("ebs.csi.aws.com", map[string]string{"encrypted": "false"}, map[string]string{attestation: "true"}),
			"Attested", "AttestedByPlatformTeam", nil, []string{"StorageClass/ssd: annotation " + attestation + "=true (attested, not verified)"}},
		{"missing class has no evidence", nil, "Unverified", "StorageClassNotFound", []string{`StorageClass "ssd" does not exist`, "no volume is created"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := VerifyStorageClass("ssd", tc.class)
			if string(got.Method) != tc.method || got.Reason != tc.reason {
				t.Fatalf("got %s/%s (%s); want %s/%s", got.Method, got.Reason, got.Message, tc.method, tc.reason)
			}
			assertContains(t, "message", got.Message, tc.message)
			if !slices.Equal(got.Evidence, tc.evidence) {
				t.Errorf("evidence = %q; want %q", got.Evidence, tc.evidence)
			}
		})
	}
}

func TestEncryptionControl(t *testing.T) {
	cases := []struct {
		name       string
		encryption Encryption
		want       wantControl
	}{
		{"verified passes and names the claim first",
			Encryption{Method: EncryptionVerified, Reason: "VerifiedByParameters", Message: `StorageClass "ssd" encrypts at rest`, Evidence: []string{"StorageClass/ssd: encrypted=true"}},
			wantControl{"EncryptionAtRest", "Pass", "VerifiedByParameters", []string{`"ssd"`},
				[]string{"PersistentVolumeClaim/jgz-dossiers", "StorageClass/ssd: encrypted=true"}}},
		{"attested passes",
			Encryption{Method: EncryptionAttested, Reason: "AttestedByPlatformTeam", Message: "attested", Evidence: []string{"StorageClass/local: annotation"}},
			wantControl{"EncryptionAtRest", "Pass", "AttestedByPlatformTeam", []string{"attested"},
				[]string{"PersistentVolumeClaim/jgz-dossiers", "StorageClass/local: annotation"}}},
		{"unverified fails without naming a claim that is not created",
			Encryption{Method: EncryptionUnverified, Reason: "NoEncryptionEvidence", Message: `StorageClass "plain" has no parameter`, Evidence: []string{"StorageClass/plain: parameters []"}},
			wantControl{"EncryptionAtRest", "Fail", "NoEncryptionEvidence", []string{`"plain"`}, []string{"StorageClass/plain: parameters []"}}},
		{"missing class fails",
			Encryption{Method: EncryptionUnverified, Reason: "StorageClassNotFound", Message: `StorageClass "gone" does not exist`},
			wantControl{"EncryptionAtRest", "Fail", "StorageClassNotFound", []string{`"gone"`}, nil}},
		// A zero Encryption (a step that never ran) must not count as
		// encrypted: no claim may be created from it.
		{"an empty method fails closed",
			Encryption{Method: "", Reason: "Unset", Message: "nothing known"},
			wantControl{"EncryptionAtRest", "Fail", "Unset", []string{"nothing known"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evidence := slices.Clone(tc.encryption.Evidence)
			assertControl(t, EncryptionControl(tc.encryption, "jgz-dossiers"), tc.want)
			if !slices.Equal(tc.encryption.Evidence, evidence) {
				t.Errorf("EncryptionControl changed its input's evidence to %q", tc.encryption.Evidence)
			}
		})
	}
}

func TestEncryptedFailsClosed(t *testing.T) {
	for method, want := range map[EncryptionMethod]bool{
		"Verified": true, "Attested": true, "Unverified": false, "": false, "verified": false, "Encrypted": false,
	} {
		if got := (Encryption{Method: method}).Encrypted(); got != want {
			t.Errorf("Encryption{Method: %q}.Encrypted() = %v; want %v", method, got, want)
		}
	}
}
