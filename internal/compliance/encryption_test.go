package compliance

import (
	"strings"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestVerifyStorageClass(t *testing.T) {
	class := func(provisioner string, params, annotations map[string]string) *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: annotations}, Provisioner: provisioner, Parameters: params}
	}
	attest := map[string]string{v1alpha1.AnnotationEncryptedAtRest: "true"}
	cases := []struct {
		name         string
		class        *storagev1.StorageClass
		method       EncryptionMethod
		reason       string
		evidenceHas  string
		messageNames string
	}{
		{"AWS EBS encrypted", class("ebs.csi.aws.com", map[string]string{"encrypted": "true", "kmsKeyId": "arn:aws:kms:k"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "kmsKeyId=arn:aws:kms:k", ""},
		{"AWS EBS encrypted, case-insensitive value", class("ebs.csi.aws.com", map[string]string{"encrypted": "True"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "encrypted=True", ""},
		{"AWS EBS not encrypted", class("ebs.csi.aws.com", map[string]string{"encrypted": "false"}, nil),
			EncryptionUnverified, v1alpha1.ReasonNoEncryptionEvidence, "encrypted", `"c"`},
		{"in-tree AWS EBS", class("kubernetes.io/aws-ebs", map[string]string{"encrypted": "true"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "", ""},
		{"GCE PD with CMEK", class("pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": "projects/p/keys/k"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "projects/p/keys/k", ""},
		{"GCE PD without CMEK", class("pd.csi.storage.gke.io", map[string]string{"type": "pd-ssd"}, nil),
			EncryptionUnverified, v1alpha1.ReasonNoEncryptionEvidence, "type", ""},
		{"Azure disk encryption set, any case", class("disk.csi.azure.com", map[string]string{"DiskEncryptionSetID": "/subscriptions/s/des"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "/subscriptions/s/des", ""},
		{"Longhorn encrypted", class("driver.longhorn.io", map[string]string{"encrypted": "true", "csi.storage.k8s.io/provisioner-secret-name": "longhorn-crypto"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "longhorn-crypto", ""},
		{"Ceph RBD encrypted", class("rbd.csi.ceph.com", map[string]string{"encrypted": "true", "encryptionKMSID": "vault"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "encryptionKMSID=vault", ""},
		{"OpenShift Data Foundation RBD", class("openshift-storage.rbd.csi.ceph.com", map[string]string{"encrypted": "true"}, nil),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "", ""},
		{"encrypted parameter on an unknown provisioner proves nothing", class("example.com/csi", map[string]string{"encrypted": "true"}, nil),
			EncryptionUnverified, v1alpha1.ReasonNoEncryptionEvidence, "example.com/csi", ""},
		{"attested by the platform team", class("rancher.io/local-path", nil, attest),
			EncryptionAttested, v1alpha1.ReasonAttestedByPlatform, "attested, not verified", "did not verify"},
		{"attestation other than true", class("rancher.io/local-path", nil, map[string]string{v1alpha1.AnnotationEncryptedAtRest: "yes"}),
			EncryptionUnverified, v1alpha1.ReasonNoEncryptionEvidence, "", ""},
		{"parameters win over attestation", class("ebs.csi.aws.com", map[string]string{"encrypted": "true"}, attest),
			EncryptionVerified, v1alpha1.ReasonVerifiedByParameters, "", ""},
		{"missing class", nil, EncryptionUnverified, v1alpha1.ReasonStorageClassNotFound, "", `"wanted"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := VerifyStorageClass("wanted", tc.class)
			if got.Method != tc.method || got.Reason != tc.reason {
				t.Fatalf("got %s/%s (%s); want %s/%s", got.Method, got.Reason, got.Message, tc.method, tc.reason)
			}
			if tc.evidenceHas != "" && !strings.Contains(strings.Join(got.Evidence, "\n"), tc.evidenceHas) {
				t.Errorf("evidence %q lacks %q", got.Evidence, tc.evidenceHas)
			}
			if tc.messageNames != "" && !strings.Contains(got.Message, tc.messageNames) {
				t.Errorf("message %q lacks %q", got.Message, tc.messageNames)
			}
			if got.Encrypted() != (tc.method != EncryptionUnverified) {
				t.Errorf("Encrypted() = %v for %s", got.Encrypted(), got.Method)
			}
		})
	}
}

func TestEncryptionControlFailsClosed(t *testing.T) {
	c := EncryptionControl(VerifyStorageClass("x", nil), "claim")
	if c.Result != "Fail" || c.Reference == "" {
		t.Errorf("control for a missing class = %+v; want Fail with a reference", c)
	}
	c = EncryptionControl(VerifyStorageClass("x", &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Provisioner: "ebs.csi.aws.com", Parameters: map[string]string{"encrypted": "true"}}), "claim")
	if c.Result != "Pass" || c.Evidence[0] != "PersistentVolumeClaim/claim" {
		t.Errorf("control for an encrypted class = %+v; want Pass naming the claim", c)
	}
}
