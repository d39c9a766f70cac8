package controllers

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// ProxyIssuerRef is the cert-manager issuer of the audit proxies' serving
// certificates, when cert-manager issues them.
type ProxyIssuerRef struct {
	Name, Kind, Group string
}

// ServingCertIssuer issues the audit proxies' serving certificates: the
// operator's CA (webhook.CertManager).
type ServingCertIssuer interface {
	// IssueServing returns tls.crt, tls.key and ca.crt for the names.
	IssueServing(ctx context.Context, commonName string, dnsNames []string, ips []net.IP, now time.Time) (map[string][]byte, error)
	// CurrentCA is the CA (PEM) that new certificates are signed with.
	CurrentCA(ctx context.Context) ([]byte, error)
}

// reconcileProxyTLS keeps the audit proxy's serving certificate valid
// (Secret <store>-proxy-tls, issued again a third of its lifetime before it
// expires, when its names change, or when the CA rotated) and publishes its
// trust bundle (ConfigMap <store>-proxy-ca). A store that opted out of TLS
// gets neither.
func (r *DossierStoreReconciler) reconcileProxyTLS(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) (compliance.ProxyTransport, error) {
	t := compliance.ProxyTransport{TLS: webhook.ProxyTLS(store), Secret: resources.ProxyTLSName(store)}
	if !t.TLS {
		t.DisabledReason = store.Spec.Workload.ProxyTLS.DisabledReason
		return t, nil
	}
	if r.ProxyIssuer != nil {
		return r.reconcileProxyCertificate(ctx, store, now, t)
	}
	if r.Certs == nil {
		// The manager runs without the webhook (and so without its CA):
		// AuditActive reports that no certificate is issued.
		return t, nil
	}
	secret := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: t.Secret}, secret)
	if apierrors.IsNotFound(err) {
		secret, err = nil, nil
	}
	if err != nil {
		return t, fmt.Errorf("read the proxy's serving certificate: %w", err)
	}
	ca, err := r.Certs.CurrentCA(ctx)
	if err != nil {
		return t, err
	}
	state := resources.CheckProxyCert(secret, store, ca, now)
	data := map[string][]byte{}
	if secret != nil {
		data = secret.Data
	}
	if state.Renew {
		cn, dns, ips := resources.ProxyCertNames(store)
		if data, err = r.Certs.IssueServing(ctx, cn, dns, ips, now); err != nil {
			return t, fmt.Errorf("issue the proxy's serving certificate: %w", err)
		}
		if _, err := applyChild(ctx, r.Client, resources.ProxyTLSSecret(store, data), &corev1.Secret{}); err != nil {
			return t, fmt.Errorf("apply the proxy's serving certificate: %w", err)
		}
		log.FromContext(ctx).Info("Issued the audit proxy's serving certificate", "secret", klog.KRef(store.Namespace, t.Secret), "why", state.Reason)
		state = resources.CheckProxyCert(&corev1.Secret{Data: data}, store, nil, now)
	}
	if _, err := applyChild(ctx, r.Client, resources.ProxyCAConfigMap(store, data["ca.crt"]), &corev1.ConfigMap{}); err != nil {
		return t, fmt.Errorf("apply the proxy's trust bundle: %w", err)
	}
	t.Issued, t.NotAfter = state.Usable, state.NotAfter
	return t, nil
}

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;create;patch

// reconcileProxyCertificate has cert-manager issue and renew the serving
// certificate: a Certificate per store (resources.ProxyCertificate), applied
// when it differs from what the API server holds (read uncached: the
// operator does not cache Certificates).
func (r *DossierStoreReconciler) reconcileProxyCertificate(ctx context.Context, store *v1alpha1.DossierStore, now time.Time, t compliance.ProxyTransport) (compliance.ProxyTransport, error) {
	want := resources.ProxyCertificate(store, r.ProxyIssuer.Name, r.ProxyIssuer.Kind, r.ProxyIssuer.Group)
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(want.GroupVersionKind())
	err := r.Reader.Get(ctx, client.ObjectKeyFromObject(want), live)
	if err != nil && !apierrors.IsNotFound(err) {
		return t, fmt.Errorf("read the proxy's cert-manager Certificate: %w", err)
	}
	if err != nil || !equality.Semantic.DeepEqual(live.Object["spec"], want.Object["spec"]) {
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(want), client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
			return t, fmt.Errorf("apply the proxy's cert-manager Certificate: %w", err)
		}
	}
	secret := &corev1.Secret{}
	err = r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: t.Secret}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return t, nil // not issued yet; the reconcile looks again soon
	case err != nil:
		return t, fmt.Errorf("read the proxy's serving certificate: %w", err)
	}
	state := resources.CheckProxyCert(secret, store, nil, now)
	if _, err := applyChild(ctx, r.Client, resources.ProxyCAConfigMap(store, secret.Data["ca.crt"]), &corev1.ConfigMap{}); err != nil {
		return t, fmt.Errorf("apply the proxy's trust bundle: %w", err)
	}
	t.Issued, t.NotAfter = state.Usable, state.NotAfter
	return t, nil
}
