package controllers_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func servingCert(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(s.Data["tls.crt"])
	if block == nil {
		t.Fatalf("Secret %s holds no certificate", s.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// The audit proxy serves TLS by default: the store gets a serving
// certificate from the operator's CA, for the proxy's names and loopback,
// renewed before it expires; the status says TLS. Plain HTTP only by an
// explicit opt-out, which the status names with its reason.
func TestProxyServesTLSWithAPerStoreCertificate(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))

	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-proxy-tls"), secret); err != nil {
		t.Fatalf("no serving certificate Secret: %v", err)
	}
	if secret.Type != corev1.SecretTypeTLS || !ownedBy(secret, store) {
		t.Errorf("Secret type %s, owned %v; want kubernetes.io/tls owned by the store", secret.Type, ownedBy(secret, store))
	}
	cert := servingCert(t, secret)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("ca.crt does not parse")
	}
	for _, name := range []string{"dossiers-proxy." + ns + ".svc", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: fakeClock.Now()}); err != nil {
			t.Errorf("the serving certificate does not verify for %s: %v", name, err)
		}
	}
	ca := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, key(ns, "dossiers-proxy-ca"), ca); err != nil || ca.Data["ca.crt"] != string(secret.Data["ca.crt"]) {
		t.Errorf("the trust bundle ConfigMap is missing or differs: %v", err)
	}
	got := getStore(t, store)
	if c := findCondition(got, v1alpha1.ConditionNetworkIsolated); !strings.Contains(c.Message, "(TLS)") {
		t.Errorf("NetworkIsolated %q does not say TLS", c.Message)
	}
	if row := controlRow(got, v1alpha1.ControlAuditActive); !strings.Contains(strings.Join(row.Evidence, " "), "Secret/dossiers-proxy-tls: TLS serving certificate valid until") {
		t.Errorf("AuditActive evidence %v does not name the serving certificate", row.Evidence)
	}

	// A third of its lifetime before it expires, it is issued again.
	jump := cert.NotAfter.Sub(fakeClock.Now()) - cert.NotAfter.Sub(cert.NotBefore)/4
	fakeClock.Step(jump)
	t.Cleanup(func() { fakeClock.Step(-jump) }) // other tests run on real time
	nudge(t, store)
	eventually(t, timeout, func() error {
		fresh := &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, "dossiers-proxy-tls"), fresh); err != nil {
			return err
		}
		if servingCert(t, fresh).SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return fmt.Errorf("the serving certificate was not renewed")
		}
		return nil
	})

	// Opting out: plain HTTP, named in the status with the reason.
	ns2 := newNamespace(t)
	plain := newStore(t, ns2, encryptedClass(t).Name, func(s *v1alpha1.DossierStore) {
		s.Spec.Workload.ProxyTLS = &v1alpha1.ProxyTLSSpec{Mode: v1alpha1.ProxyTLSDisabled, DisabledReason: "Istio mutual TLS between all pods"}
	})
	eventually(t, timeout, storeCondition(plain, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	if err := k8s.Get(ctx, key(ns2, "dossiers-proxy-tls"), &corev1.Secret{}); err == nil {
		t.Error("a store that opted out of TLS got a serving certificate")
	}
	got = getStore(t, plain)
	if c := findCondition(got, v1alpha1.ConditionNetworkIsolated); !strings.Contains(c.Message, "plain HTTP") || !strings.Contains(c.Message, "Istio mutual TLS") {
		t.Errorf("NetworkIsolated %q does not say plain HTTP and why", c.Message)
	}
	if row := controlRow(got, v1alpha1.ControlAuditActive); !strings.Contains(strings.Join(row.Evidence, " "), "plain HTTP") {
		t.Errorf("AuditActive evidence %v does not say plain HTTP", row.Evidence)
	}
}

func controlRow(s *v1alpha1.DossierStore, control string) v1alpha1.ComplianceControl {
	for _, c := range s.Status.Compliance {
		if c.Control == control {
			return c
		}
	}
	return v1alpha1.ComplianceControl{}
}
