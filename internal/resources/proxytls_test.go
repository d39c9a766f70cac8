package resources

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// signed returns a CA (PEM) and a Secret with a certificate it signed for
// dns, valid from notBefore for lifetime.
func signed(t *testing.T, dns []string, notBefore time.Time, lifetime time.Duration) ([]byte, *corev1.Secret) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: notBefore.Add(-time.Hour), NotAfter: notBefore.Add(10 * lifetime)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: dns,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, NotBefore: notBefore, NotAfter: notBefore.Add(lifetime),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), &corev1.Secret{Data: map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), "tls.key": []byte("key")}}
}

func TestCheckProxyCert(t *testing.T) {
	store := testStore()
	store.Namespace = "ns"
	_, dns, _ := ProxyCertNames(store)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ca, fresh := signed(t, dns, t0, 90*24*time.Hour)
	otherCA, _ := signed(t, dns, t0, time.Hour)
	_, wrongNames := signed(t, []string{"elsewhere"}, t0, 90*24*time.Hour)
	for _, tc := range []struct {
		name          string
		secret        *corev1.Secret
		ca            []byte
		at            time.Time
		renew, usable bool
	}{
		{"none", nil, ca, t0, true, false},
		{"fresh", fresh, ca, t0.Add(time.Hour), false, true},
		{"two thirds through", fresh, ca, t0.Add(61 * 24 * time.Hour), true, true},
		{"expired", fresh, ca, t0.Add(91 * 24 * time.Hour), true, false},
		{"other names", wrongNames, nil, t0.Add(time.Hour), true, false},
		{"signed by a CA since rotated", fresh, otherCA, t0.Add(time.Hour), true, true},
		{"no key", &corev1.Secret{Data: map[string][]byte{"tls.crt": fresh.Data["tls.crt"]}}, ca, t0, true, false},
	} {
		st := CheckProxyCert(tc.secret, store, tc.ca, tc.at)
		if st.Renew != tc.renew || st.Usable != tc.usable {
			t.Errorf("%s: renew=%v usable=%v (%s); want renew=%v usable=%v", tc.name, st.Renew, st.Usable, st.Reason, tc.renew, tc.usable)
		}
	}
}

func TestProxyCertificate(t *testing.T) {
	store := testStore()
	store.Namespace = "wijkteam"
	store.Spec.Workload.ProxyTLS = &v1alpha1.ProxyTLSSpec{DNSNames: []string{"dossiers.wijkteam.example.nl"}}
	c := ProxyCertificate(store, "municipal-ca", "ClusterIssuer", "cert-manager.io")
	str := func(path ...string) string { v, _, _ := unstructured.NestedString(c.Object, path...); return v }
	if str("spec", "secretName") != ProxyTLSName(store) || str("spec", "issuerRef", "name") != "municipal-ca" || str("spec", "issuerRef", "kind") != "ClusterIssuer" {
		t.Errorf("Certificate spec %v", c.Object["spec"])
	}
	names, _, _ := unstructured.NestedStringSlice(c.Object, "spec", "dnsNames")
	if !slices.Contains(names, "dossiers.wijkteam.example.nl") || !slices.Contains(names, store.Name+"-proxy.wijkteam.svc") || !slices.Contains(names, "localhost") {
		t.Errorf("dnsNames %v", names)
	}
	// cert-manager's Secret carries the label the operator's cache selects on.
	labels, _, _ := unstructured.NestedStringMap(c.Object, "spec", "secretTemplate", "labels")
	if labels[LabelManagedBy] != ManagedByValue {
		t.Errorf("secretTemplate labels %v lack %s", labels, LabelManagedBy)
	}
}
