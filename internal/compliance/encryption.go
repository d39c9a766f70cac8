package compliance

import (
	"fmt"
	"sort"
	"strings"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// EncryptionMethod is how encryption at rest of a StorageClass was established.
type EncryptionMethod string

// The methods, strongest first.
const (
	// EncryptionVerified: the provisioner's parameters are known to encrypt.
	EncryptionVerified EncryptionMethod = "Verified"
	// EncryptionAttested: the platform team attests it with an annotation.
	EncryptionAttested EncryptionMethod = "Attested"
	// EncryptionUnverified: no evidence; no dossiers may be stored there.
	EncryptionUnverified EncryptionMethod = "Unverified"
)

// encryptingProvisioner describes a provisioner whose parameters can prove
// encryption at rest. Parameter names are matched without regard to case,
// as Azure does.
type encryptingProvisioner struct {
	matches func(provisioner string) bool
	param   string
	enabled func(value string) bool
	// keyParams hold the key reference recorded as evidence.
	keyParams []string
}

func is(names ...string) func(string) bool {
	return func(p string) bool {
		for _, n := range names {
			if p == n {
				return true
			}
		}
		return false
	}
}

func isTrue(v string) bool   { return strings.EqualFold(strings.TrimSpace(v), "true") }
func nonEmpty(v string) bool { return strings.TrimSpace(v) != "" }

var encryptingProvisioners = []encryptingProvisioner{
	{matches: is("ebs.csi.aws.com", "kubernetes.io/aws-ebs"), param: "encrypted", enabled: isTrue, keyParams: []string{"kmsKeyId"}},
	{matches: is("pd.csi.storage.gke.io"), param: "disk-encryption-kms-key", enabled: nonEmpty, keyParams: []string{"disk-encryption-kms-key"}},
	{matches: is("disk.csi.azure.com"), param: "diskEncryptionSetID", enabled: nonEmpty, keyParams: []string{"diskEncryptionSetID"}},
	{matches: is("driver.longhorn.io"), param: "encrypted", enabled: isTrue, keyParams: []string{"csi.storage.k8s.io/provisioner-secret-name"}},
	{matches: func(p string) bool { return p == "rbd.csi.ceph.com" || strings.HasSuffix(p, ".rbd.csi.ceph.com") },
		param: "encrypted", enabled: isTrue, keyParams: []string{"encryptionKMSID"}},
}

// Encryption is the outcome of verifying a StorageClass.
type Encryption struct {
	Method   EncryptionMethod
	Reason   string
	Message  string
	Evidence []string
}

// Encrypted says whether dossiers may be stored on the class.
func (e Encryption) Encrypted() bool {
	return e.Method == EncryptionVerified || e.Method == EncryptionAttested
}

// VerifyStorageClass decides, failing closed, whether a StorageClass
// encrypts at rest. class is nil when the class does not exist.
func VerifyStorageClass(name string, class *storagev1.StorageClass) Encryption {
	if class == nil {
		return Encryption{
			Method:  EncryptionUnverified,
			Reason:  v1alpha1.ReasonStorageClassNotFound,
			Message: fmt.Sprintf("StorageClass %q does not exist; no volume is created until a class that encrypts at rest is named", name),
		}
	}
	ref := "StorageClass/" + class.Name
	for _, p := range encryptingProvisioners {
		if !p.matches(class.Provisioner) {
			continue
		}
		if value, ok := param(class.Parameters, p.param); ok && p.enabled(value) {
			evidence := []string{fmt.Sprintf("%s: provisioner %s, parameter %s=%s", ref, class.Provisioner, p.param, value)}
			for _, k := range p.keyParams {
				if v, ok := param(class.Parameters, k); ok && v != "" && k != p.param {
					evidence = append(evidence, fmt.Sprintf("%s: key reference %s=%s", ref, k, v))
				}
			}
			return Encryption{
				Method:   EncryptionVerified,
				Reason:   v1alpha1.ReasonVerifiedByParameters,
				Message:  fmt.Sprintf("StorageClass %q encrypts at rest: provisioner %s with %s set", class.Name, class.Provisioner, p.param),
				Evidence: evidence,
			}
		}
	}
	if isTrue(class.Annotations[v1alpha1.AnnotationEncryptedAtRest]) {
		return Encryption{
			Method:   EncryptionAttested,
			Reason:   v1alpha1.ReasonAttestedByPlatform,
			Message:  fmt.Sprintf("StorageClass %q is attested by the platform team to encrypt at rest; dossierguard did not verify it from the provisioner's parameters", class.Name),
			Evidence: []string{fmt.Sprintf("%s: annotation %s=true (attested, not verified)", ref, v1alpha1.AnnotationEncryptedAtRest)},
		}
	}
	return Encryption{
		Method: EncryptionUnverified,
		Reason: v1alpha1.ReasonNoEncryptionEvidence,
		Message: fmt.Sprintf("StorageClass %q (provisioner %s) has no parameter known to encrypt at rest and no %s=\"true\" attestation; no volume is created",
			class.Name, class.Provisioner, v1alpha1.AnnotationEncryptedAtRest),
		Evidence: []string{fmt.Sprintf("%s: provisioner %s, parameters [%s]", ref, class.Provisioner, strings.Join(paramNames(class.Parameters), ", "))},
	}
}

func param(params map[string]string, name string) (string, bool) {
	for k, v := range params {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func paramNames(params map[string]string) []string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// EncryptionControl is the EncryptionAtRest control of a store.
func EncryptionControl(e Encryption, claim string) v1alpha1.ComplianceControl {
	if !e.Encrypted() {
		return control(v1alpha1.ControlEncryptionAtRest, v1alpha1.ResultFail, e.Reason, e.Message, e.Evidence...)
	}
	evidence := append([]string{"PersistentVolumeClaim/" + claim}, e.Evidence...)
	return control(v1alpha1.ControlEncryptionAtRest, v1alpha1.ResultPass, e.Reason, e.Message, evidence...)
}
