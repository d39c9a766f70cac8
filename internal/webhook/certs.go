package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// The manager's permission to patch the MutatingWebhookConfiguration is
// not generated from a marker: the chart and config/manager grant get and
// patch on dossierguard-sidecar-injector alone (resourceNames).

// Certificate lifetimes: serving certificates are renewed when less than
// RenewBefore of their validity is left, so they rotate about every 60 days.
// Every replica checks every checkEvery: after one replica renews, the
// others load the new certificate within that time, and meanwhile the CA
// bundle trusts both the new and the previous CA, so no call fails.
const (
	CertValidity = 90 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
	checkEvery   = 5 * time.Minute
	// previousCAKey keeps the CA of the certificate before the last renewal.
	previousCAKey = "ca-previous.crt"
	// caKeyKey holds the CA's private key, with which the operator also
	// signs the audit proxies' serving certificates (IssueServing).
	caKeyKey = "ca.key"
)

// CertManager keeps the webhook's serving certificate valid: a private CA
// and a serving certificate for the webhook Service, stored in a Secret in
// the operator's namespace, written to the webhook server's certificate
// folder (which it watches), and the CA injected into the
// MutatingWebhookConfiguration.
type CertManager struct {
	Client            client.Client
	Namespace         string
	SecretName        string
	ServiceName       string
	WebhookConfigName string
	// ValidatingConfigName is the ValidatingWebhookConfiguration that gets
	// the same CA; empty for none.
	ValidatingConfigName string
	CertDir              string
	Now                  func() time.Time
}

// Start renews the certificate periodically; it is a manager Runnable.
func (m *CertManager) Start(ctx context.Context) error {
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Ensure(ctx); err != nil {
				log.FromContext(ctx).Error(err, "Renewing the webhook certificate failed")
			}
		}
	}
}

// NeedLeaderElection is false: every replica serves the webhook.
func (m *CertManager) NeedLeaderElection() bool { return false }

// Ensure makes sure a valid certificate exists, is on disk and is trusted.
func (m *CertManager) Ensure(ctx context.Context) error {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	secret := &corev1.Secret{}
	err := m.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.SecretName}, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read webhook certificate Secret: %w", err)
	}
	if apierrors.IsNotFound(err) || !m.valid(secret, now) {
		data, issueErr := m.issue(now)
		if issueErr != nil {
			return issueErr
		}
		if secret.ResourceVersion == "" {
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: m.SecretName, Namespace: m.Namespace,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "dossierguard", "app.kubernetes.io/component": "webhook-certificate"}},
				Type: corev1.SecretTypeTLS, Data: data,
			}
			if err := m.Client.Create(ctx, secret); apierrors.IsAlreadyExists(err) {
				// Another replica was first: use its certificate.
				if err := m.Client.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil {
					return fmt.Errorf("read webhook certificate Secret: %w", err)
				}
			} else if err != nil {
				return fmt.Errorf("create webhook certificate Secret: %w", err)
			}
		} else {
			data[previousCAKey] = secret.Data["ca.crt"]
			secret.Data = data
			// A conflict means another replica renewed first; the next check uses its certificate.
			if err := m.Client.Update(ctx, secret); err != nil {
				return fmt.Errorf("renew webhook certificate Secret: %w", err)
			}
		}
		log.FromContext(ctx).Info("Issued a new webhook serving certificate", "secret", m.SecretName)
	}
	if err := m.writeFiles(secret.Data); err != nil {
		return err
	}
	return m.injectCA(ctx, caBundle(secret.Data))
}

// caBundle trusts the current CA and, during a rotation, the previous one.
func caBundle(data map[string][]byte) []byte {
	return append(append([]byte{}, data["ca.crt"]...), data[previousCAKey]...)
}

// valid: the certificate parses, names the Service and has time left.
func (m *CertManager) valid(secret *corev1.Secret, now time.Time) bool {
	block, _ := pem.Decode(secret.Data[corev1.TLSCertKey])
	if block == nil || len(secret.Data[corev1.TLSPrivateKeyKey]) == 0 || len(secret.Data["ca.crt"]) == 0 || len(secret.Data[caKeyKey]) == 0 {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || now.Add(RenewBefore).After(cert.NotAfter) {
		return false
	}
	return cert.VerifyHostname(m.dnsNames()[1]) == nil
}

func (m *CertManager) dnsNames() []string {
	return []string{
		m.ServiceName,
		fmt.Sprintf("%s.%s.svc", m.ServiceName, m.Namespace),
		fmt.Sprintf("%s.%s.svc.cluster.local", m.ServiceName, m.Namespace),
	}
}

// issue makes a new CA and a serving certificate signed by it.
func (m *CertManager) issue(now time.Time) (map[string][]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dossierguard webhook CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CertValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: m.dnsNames()[1]},
		DNSNames:     m.dnsNames(),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	return map[string][]byte{
		"ca.crt":                pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		caKeyKey:                pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// IssueServing signs a serving certificate for the names with the
// operator's CA, valid for CertValidity from now: the audit proxies' per-store
// certificates. It returns tls.crt, tls.key and ca.crt, the trust bundle of
// the current and the previous CA, so that clients keep trusting a proxy
// through a CA rotation. It reads the CA from the Secret each time, so a
// renewal by another replica is picked up.
func (m *CertManager) IssueServing(ctx context.Context, commonName string, dnsNames []string, ips []net.IP, now time.Time) (map[string][]byte, error) {
	secret := &corev1.Secret{}
	if err := m.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.SecretName}, secret); err != nil {
		return nil, fmt.Errorf("read the operator's CA: %w", err)
	}
	caBlock, _ := pem.Decode(secret.Data["ca.crt"])
	keyBlock, _ := pem.Decode(secret.Data[caKeyKey])
	if caBlock == nil || keyBlock == nil {
		return nil, fmt.Errorf("the operator's CA in Secret %s has no certificate or key yet", m.SecretName)
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse the operator's CA: %w", err)
	}
	caKey, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse the operator's CA key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	notAfter := now.Add(CertValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter // never beyond the CA; renewed with it
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: commonName}, DNSNames: dnsNames, IPAddresses: ips,
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}
	return map[string][]byte{
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"ca.crt":                caBundle(secret.Data),
	}, nil
}

// CurrentCA is the operator's current CA certificate (PEM): a serving
// certificate it did not sign is issued again.
func (m *CertManager) CurrentCA(ctx context.Context) ([]byte, error) {
	secret := &corev1.Secret{}
	if err := m.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.SecretName}, secret); err != nil {
		return nil, fmt.Errorf("read the operator's CA: %w", err)
	}
	return secret.Data["ca.crt"], nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeFiles puts the key pair where the webhook server reads it, replacing
// each file atomically.
func (m *CertManager) writeFiles(data map[string][]byte) error {
	if err := os.MkdirAll(m.CertDir, 0o700); err != nil {
		return fmt.Errorf("webhook certificate folder: %w", err)
	}
	for _, name := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		path := filepath.Join(m.CertDir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data[name]) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data[name], 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("replace %s: %w", name, err)
		}
	}
	return nil
}

// injectCA puts the CA into every webhook of both configurations.
func (m *CertManager) injectCA(ctx context.Context, ca []byte) error {
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := m.patchCA(ctx, m.WebhookConfigName, mutating, func() bool {
		changed := false
		for i := range mutating.Webhooks {
			if !bytes.Equal(mutating.Webhooks[i].ClientConfig.CABundle, ca) {
				mutating.Webhooks[i].ClientConfig.CABundle, changed = ca, true
			}
		}
		return changed
	}); err != nil || m.ValidatingConfigName == "" {
		return err
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	return m.patchCA(ctx, m.ValidatingConfigName, validating, func() bool {
		changed := false
		for i := range validating.Webhooks {
			if !bytes.Equal(validating.Webhooks[i].ClientConfig.CABundle, ca) {
				validating.Webhooks[i].ClientConfig.CABundle, changed = ca, true
			}
		}
		return changed
	})
}

// patchCA reads the configuration name into cfg, lets set change it, and
// patches it when set reports a change.
func (m *CertManager) patchCA(ctx context.Context, name string, cfg client.Object, set func() bool) error {
	kind := fmt.Sprintf("%T", cfg)[len("*v1."):]
	if err := m.Client.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			log.FromContext(ctx).Info("The webhook configuration does not exist yet; its CA is injected once it does", "kind", kind, "name", name)
			return nil
		}
		return fmt.Errorf("read %s: %w", kind, err)
	}
	patch := client.MergeFrom(cfg.DeepCopyObject().(client.Object))
	if !set() {
		return nil
	}
	if err := m.Client.Patch(ctx, cfg, patch); err != nil {
		return fmt.Errorf("inject CA into %s: %w", kind, err)
	}
	return nil
}
