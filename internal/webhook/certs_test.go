package webhook_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/internal/webhook"
)

func TestOperatorManagedCertificates(t *testing.T) {
	ctx := context.Background()
	namespace(t, operatorNamespace)
	// A configuration of its own, so that the injector's stays intact.
	own := injectorConfiguration()
	own.Name = "cert-test"
	own.Webhooks[0].ObjectSelector.MatchExpressions[0].Key = "never.example/selects"
	if err := env.Client.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &webhook.CertManager{
		Client: env.Client, Namespace: operatorNamespace, SecretName: "dossierguard-webhook-tls",
		ServiceName: "dossierguard-webhook", WebhookConfigName: "cert-test",
		CertDir: t.TempDir(), Now: func() time.Time { return now },
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: m.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(m.CertDir, "tls.crt"))
	if err != nil || !bytes.Equal(onDisk, secret.Data["tls.crt"]) {
		t.Fatalf("certificate on disk does not match the Secret: %v", err)
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(secret.Data["ca.crt"])
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "dossierguard-webhook.dossierguard-system.svc", Roots: roots}); err != nil {
		t.Errorf("serving certificate does not verify for the Service name: %v", err)
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: m.WebhookConfigName}, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, secret.Data["ca.crt"]) {
		t.Error("the CA was not injected into the MutatingWebhookConfiguration")
	}

	// A second run with time to spare changes nothing.
	version := secret.ResourceVersion
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	_ = env.Client.Get(ctx, client.ObjectKeyFromObject(secret), secret)
	if secret.ResourceVersion != version {
		t.Error("a valid certificate was replaced")
	}

	// Close to expiry it is renewed, on disk and in the CA bundle.
	now = now.Add(webhook.CertValidity - webhook.RenewBefore + time.Hour)
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := &corev1.Secret{}
	_ = env.Client.Get(ctx, client.ObjectKeyFromObject(secret), renewed)
	if bytes.Equal(renewed.Data["tls.crt"], secret.Data["tls.crt"]) {
		t.Fatal("the certificate was not renewed before expiry")
	}
	onDisk, _ = os.ReadFile(filepath.Join(m.CertDir, "tls.crt"))
	_ = env.Client.Get(ctx, client.ObjectKey{Name: m.WebhookConfigName}, cfg)
	if !bytes.Equal(onDisk, renewed.Data["tls.crt"]) {
		t.Error("the renewed certificate is not on disk")
	}
	// During the rotation the bundle trusts the new CA and the previous one,
	// so a replica still serving the old certificate keeps working.
	bundle := x509.NewCertPool()
	if !bundle.AppendCertsFromPEM(cfg.Webhooks[0].ClientConfig.CABundle) {
		t.Fatal("the injected bundle does not parse")
	}
	for name, data := range map[string][]byte{"old": secret.Data["tls.crt"], "new": renewed.Data["tls.crt"]} {
		b, _ := pem.Decode(data)
		c, _ := x509.ParseCertificate(b.Bytes)
		if _, err := c.Verify(x509.VerifyOptions{DNSName: "dossierguard-webhook.dossierguard-system.svc", Roots: bundle,
			CurrentTime: now.Add(-time.Hour)}); err != nil {
			t.Errorf("the %s serving certificate does not verify against the injected bundle: %v", name, err)
		}
	}

	// A second replica starting with no Secret of its own uses the first's.
	other := *m
	other.CertDir = t.TempDir()
	if err := other.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	otherDisk, _ := os.ReadFile(filepath.Join(other.CertDir, "tls.crt"))
	if !bytes.Equal(otherDisk, renewed.Data["tls.crt"]) {
		t.Error("a second replica issued its own certificate instead of using the shared one")
	}
}

// The operator's CA also signs the audit proxies' serving certificates: for
// the names asked, verifiable with the returned bundle, never outliving the
// CA; a Secret of an older release without the CA's key is renewed.
func TestOperatorCAIssuesServingCertificates(t *testing.T) {
	ctx := context.Background()
	namespace(t, operatorNamespace)
	now := time.Now()
	m := &webhook.CertManager{
		Client: env.Client, Namespace: operatorNamespace, SecretName: "proxy-ca-test",
		ServiceName: "dossierguard-webhook", WebhookConfigName: "absent", CertDir: t.TempDir(), Now: func() time.Time { return now },
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := m.IssueServing(ctx, "s-proxy.ns.svc", []string{"s-proxy.ns.svc", "localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, now)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data["tls.crt"])
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || len(data["tls.key"]) == 0 {
		t.Fatalf("no certificate and key: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(data["ca.crt"])
	for _, name := range []string{"s-proxy.ns.svc", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now}); err != nil {
			t.Errorf("the serving certificate does not verify for %s: %v", name, err)
		}
	}
	current, _ := m.CurrentCA(ctx)
	caBlock, _ := pem.Decode(current)
	ca, _ := x509.ParseCertificate(caBlock.Bytes)
	if cert.NotAfter.After(ca.NotAfter) {
		t.Errorf("the serving certificate (until %s) outlives the CA (until %s)", cert.NotAfter, ca.NotAfter)
	}

	// An older release's Secret, without the CA's key, is renewed.
	secret := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: m.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	delete(secret.Data, "ca.key")
	if err := env.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.IssueServing(ctx, "s-proxy.ns.svc", []string{"s-proxy.ns.svc"}, nil, now); err != nil {
		t.Errorf("after renewing an older Secret the CA cannot issue: %v", err)
	}
}
