package resources

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// ProxyCAName is the ConfigMap with the trust bundle for the audit proxy's
// serving certificate, for clients in the store's namespace (an ingress
// controller, an authenticating proxy) that must not read the Secret.
func ProxyCAName(store *v1alpha1.DossierStore) string { return store.Name + "-proxy-ca" }

// ProxyCertNames are the names the audit proxy's serving certificate holds:
// <store>-proxy in the store's namespace (the Service name the docs
// suggest), localhost and the loopback addresses (an authenticating proxy in
// the same pod, kubectl port-forward), and spec.workload.proxyTLS.dnsNames.
func ProxyCertNames(store *v1alpha1.DossierStore) (commonName string, dnsNames []string, ips []net.IP) {
	svc := store.Name + "-proxy"
	commonName = svc + "." + store.Namespace + ".svc"
	dnsNames = []string{svc, svc + "." + store.Namespace, commonName, commonName + ".cluster.local", "localhost"}
	if t := store.Spec.Workload.ProxyTLS; t != nil {
		for _, n := range t.DNSNames {
			if !slices.Contains(dnsNames, n) {
				dnsNames = append(dnsNames, n)
			}
		}
	}
	return commonName, dnsNames, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
}

// ProxyCertState is what a store's serving-certificate Secret holds.
type ProxyCertState struct {
	// Renew is set when a new certificate must be issued, with the reason.
	Renew  bool
	Reason string
	// NotAfter of the certificate in the Secret.
	NotAfter time.Time
	// Usable: a certificate and key for the store's names, not expired.
	Usable bool
}

// CheckProxyCert decides whether the serving certificate in secret (nil:
// none) must be issued again at now: when it is missing or does not parse,
// names other names than ProxyCertNames, has less than a third of its
// lifetime left, or was not signed by currentCA (PEM; nil skips the check),
// so that a CA rotation reaches every proxy before the old CA is dropped.
func CheckProxyCert(secret *corev1.Secret, store *v1alpha1.DossierStore, currentCA []byte, now time.Time) ProxyCertState {
	if secret == nil {
		return ProxyCertState{Renew: true, Reason: "no serving certificate yet"}
	}
	block, _ := pem.Decode(secret.Data[corev1.TLSCertKey])
	if block == nil || len(secret.Data[corev1.TLSPrivateKeyKey]) == 0 {
		return ProxyCertState{Renew: true, Reason: "the Secret holds no certificate and key"}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ProxyCertState{Renew: true, Reason: "the certificate does not parse"}
	}
	st := ProxyCertState{NotAfter: cert.NotAfter}
	_, dns, ips := ProxyCertNames(store)
	sameIPs := len(ips) == len(cert.IPAddresses)
	for i := 0; sameIPs && i < len(ips); i++ {
		sameIPs = ips[i].Equal(cert.IPAddresses[i])
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	st.Usable = slices.Equal(dns, cert.DNSNames) && sameIPs && now.Before(cert.NotAfter)
	switch {
	case !slices.Equal(dns, cert.DNSNames) || !sameIPs:
		st.Renew, st.Reason = true, "the certificate's names differ from the store's"
	case now.After(cert.NotAfter.Add(-lifetime / 3)):
		st.Renew, st.Reason = true, fmt.Sprintf("the certificate expires at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	case currentCA != nil:
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(currentCA) {
			break
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			st.Renew, st.Reason = true, "the certificate was not signed by the operator's current CA"
		}
	}
	return st
}

// ProxyTLSSecret holds the audit proxy's serving certificate (tls.crt,
// tls.key, ca.crt). Only the proxy mounts it; the webhook refuses pods that
// would read it otherwise.
func ProxyTLSSecret(store *v1alpha1.DossierStore, data map[string][]byte) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(ProxyTLSName(store), store.Namespace).
		WithLabels(StoreLabels(store, "proxy-tls")).
		WithOwnerReferences(StoreOwner(store)).
		WithType(corev1.SecretTypeTLS).
		WithData(data)
}

// ProxyCAConfigMap publishes the trust bundle of the proxy's certificate.
func ProxyCAConfigMap(store *v1alpha1.DossierStore, bundle []byte) *corev1ac.ConfigMapApplyConfiguration {
	return corev1ac.ConfigMap(ProxyCAName(store), store.Namespace).
		WithLabels(StoreLabels(store, "proxy-ca")).
		WithOwnerReferences(StoreOwner(store)).
		WithData(map[string]string{"ca.crt": string(bundle)})
}

// Duration and renewal of a serving certificate that cert-manager issues,
// matching CheckProxyCert's rule (renewed with a third of its life left).
const (
	ProxyCertDuration    = "2160h"
	ProxyCertRenewBefore = "720h"
)

// ProxyCertificate is the cert-manager Certificate for the audit proxy's
// serving certificate, when cert-manager issues it: into Secret
// <store>-proxy-tls, labelled so that the operator's cache sees it, from
// issuerRef (kind ClusterIssuer or Issuer, group cert-manager.io).
func ProxyCertificate(store *v1alpha1.DossierStore, issuerName, issuerKind, issuerGroup string) *unstructured.Unstructured {
	cn, dns, ips := ProxyCertNames(store)
	addrs := make([]any, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, ip.String())
	}
	names := make([]any, 0, len(dns))
	for _, n := range dns {
		names = append(names, n)
	}
	labels := map[string]any{}
	for k, v := range StoreLabels(store, "proxy-tls") {
		labels[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1",
		"kind":       "Certificate",
		"metadata": map[string]any{
			"name": ProxyTLSName(store), "namespace": store.Namespace, "labels": labels,
			"ownerReferences": []any{map[string]any{"apiVersion": v1alpha1.GroupVersion.String(), "kind": "DossierStore",
				"name": store.Name, "uid": string(store.UID), "controller": true, "blockOwnerDeletion": true}},
		},
		"spec": map[string]any{
			"secretName":     ProxyTLSName(store),
			"secretTemplate": map[string]any{"labels": labels},
			"commonName":     cn,
			"dnsNames":       names,
			"ipAddresses":    addrs,
			"duration":       ProxyCertDuration,
			"renewBefore":    ProxyCertRenewBefore,
			"privateKey":     map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": "Always"},
			"usages":         []any{"server auth"},
			"issuerRef":      map[string]any{"name": issuerName, "kind": issuerKind, "group": issuerGroup},
		},
	}}
	return u
}
