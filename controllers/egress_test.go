package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

const testEgressTokenReviewRole = "dossierguard-egress-gateway"

// outbound makes an agreement an Egress agreement to the Verwijsindex with
// an endpoint, its TLS Secrets and one outbound route.
func outbound(a *v1alpha1.SharingAgreement) {
	a.Spec.Direction = v1alpha1.DirectionEgress
	a.Spec.LegalBasis, a.Spec.LegalReference, a.Spec.Consent = v1alpha1.BasisLegalObligation, "Jeugdwet art. 7.1.1.1", nil
	a.Spec.Partner = v1alpha1.Partner{Type: v1alpha1.PartnerReferralIndex, Name: "Verwijsindex", CIDRs: []string{"192.0.2.32/28"},
		Ports: []v1alpha1.NetworkPort{{Port: 443}}, Endpoint: "https://vi.example.nl/api",
		TLS: &v1alpha1.PartnerTLS{CABundle: v1alpha1.SecretKeyReference{Name: "vi-ca"}, ClientCertificateSecretName: "vi-client"}}
	a.Spec.Categories = []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}
	a.Spec.OutboundRoutes = []v1alpha1.OutboundRoute{{Name: "signal", Method: "POST", Path: "/signalen/{dossier}",
		Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}}}
}

func getInto(ns, name string, o client.Object) error {
	return k8s.Get(context.Background(), key(ns, name), o)
}

func gone(ns, name string, o client.Object) error {
	switch err := getInto(ns, name, o); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%T %s/%s still exists", o, ns, name)
}

// TestEgressGatewayCreatedUpdatedRemoved: the first agreement with outbound
// routes brings the store's gateway (ConfigMap, ServiceAccount, RBAC,
// Deployment, Service, NetworkPolicies, TokenReview binding), owned by the
// store; a second agreement updates the document, the TLS mounts and the
// gateway's egress; the agreement's own policy gives the workload no
// direct egress; EgressGated follows the Deployment's availability; when
// the last outbound agreement goes, every object goes.
func TestEgressGatewayCreatedUpdatedRemoved(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	if c := findControl(getStore(t, store).Status.Compliance, v1alpha1.ControlEgressGated); c == nil || c.Reason != v1alpha1.ReasonNoOutboundAgreements {
		t.Errorf("EgressGated before any outbound agreement = %+v; want NoOutboundAgreements", c)
	}
	vi := newAgreement(t, ns, "verwijsindex", outbound)

	deployment := &appsv1.Deployment{}
	eventually(t, timeout, func() error { return getInto(ns, "dossiers-egress", deployment) })
	store = getStore(t, store)
	if !ownedBy(deployment, store) {
		t.Errorf("Deployment owners %v; want the store", deployment.OwnerReferences)
	}
	pod := deployment.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("gateway pod has %d containers; want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("gateway container security context %+v is not restricted", sc)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"egress-gateway", "--store=" + ns + "/dossiers", "--tls-dir=/etc/dossierguard/partners", "--signing-key-dir=", "--pseudonym-key="} {
		if !strings.Contains(args, want) {
			t.Errorf("gateway args %q lack %q", args, want)
		}
	}
	if pod.ServiceAccountName != "dossiers-egress" || deployment.Spec.Template.Labels[v1alpha1.LabelStore] != "" {
		t.Errorf("gateway pod: ServiceAccount %q, labels %v; want dossiers-egress and no store label (it is not the workload)", pod.ServiceAccountName, deployment.Spec.Template.Labels)
	}
	if paths := projectedPaths(pod); !slices.Equal(paths, []string{"verwijsindex/ca.crt", "verwijsindex/tls.crt", "verwijsindex/tls.key"}) {
		t.Errorf("TLS files projected %v", paths)
	}

	for _, o := range []struct {
		name string
		obj  client.Object
	}{{"dossiers-egress", &corev1.Service{}}, {"dossiers-egress", &corev1.ServiceAccount{}}, {"dossiers-egress", &rbacv1.Role{}},
		{"dossiers-egress", &rbacv1.RoleBinding{}}, {"dossiers-egress", &networkingv1.NetworkPolicy{}},
		{"dossiers-to-egress", &networkingv1.NetworkPolicy{}}, {"dossiers-egress-policy", &corev1.ConfigMap{}}} {
		if err := getInto(ns, o.name, o.obj); err != nil {
			t.Errorf("%T %s: %v", o.obj, o.name, err)
		} else if !ownedBy(o.obj, store) {
			t.Errorf("%T %s is not owned by the store", o.obj, o.name)
		}
	}
	if deployment.Spec.Replicas == nil || *deployment.Spec.Replicas != resources.DefaultEgressReplicas {
		t.Errorf("gateway replicas %v; want %d", deployment.Spec.Replicas, resources.DefaultEgressReplicas)
	}
	budget := &policyv1.PodDisruptionBudget{}
	eventually(t, timeout, func() error { return getInto(ns, "dossiers-egress", budget) })
	if !ownedBy(budget, store) || budget.Spec.MaxUnavailable == nil || budget.Spec.MaxUnavailable.IntValue() != 1 ||
		budget.Spec.Selector == nil || budget.Spec.Selector.MatchLabels[v1alpha1.LabelEgressGateway] != "dossiers" {
		t.Errorf("gateway PodDisruptionBudget owners %v spec %+v; want the store's, one pod at a time", budget.OwnerReferences, budget.Spec)
	}
	binding := &rbacv1.ClusterRoleBinding{}
	eventually(t, timeout, func() error { return getInto("", "dossierguard-egress-"+ns+"-dossiers", binding) })
	if binding.RoleRef.Name != testEgressTokenReviewRole || len(binding.Subjects) != 1 || binding.Subjects[0].Name != "dossiers-egress" || binding.Subjects[0].Namespace != ns {
		t.Errorf("TokenReview binding %+v %+v", binding.RoleRef, binding.Subjects)
	}

	// In force: the agreement shows its route; its own policy, if any, gives
	// the workload no egress; the gateway's policy admits the partner.
	eventually(t, timeout, func() error {
		if err := getInto(ns, vi.Name, vi); err != nil {
			return err
		}
		if want := "http://dossiers-egress." + ns + ".svc/verwijsindex/"; !vi.Status.InForce || vi.Status.EgressGatewayURL != want {
			return fmt.Errorf("agreement in force %v, gateway URL %q; want true, %q", vi.Status.InForce, vi.Status.EgressGatewayURL, want)
		}
		return nil
	})
	if exists, err := policyExists(ns, "share-verwijsindex"); err != nil || exists {
		t.Errorf("share-verwijsindex exists=%v (%v); an outbound agreement gives the workload no direct egress", exists, err)
	}
	eventually(t, timeout, func() error { return gatewayAdmits(ns, "192.0.2.32/28") })

	// Not ready yet (no pods in envtest), then available.
	eventually(t, timeout, egressGated(store, v1alpha1.ReasonGatewayNotReady))
	deployment.Status.ObservedGeneration, deployment.Status.Replicas, deployment.Status.UpdatedReplicas = deployment.Generation, 1, 1
	deployment.Status.ReadyReplicas, deployment.Status.AvailableReplicas = 1, 1
	if err := k8s.Status().Update(ctx, deployment); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, egressGated(store, v1alpha1.ReasonGatewayReady))

	// A second outbound agreement: the document, the mounts and the egress follow.
	newAgreement(t, ns, "woningcorporatie", func(a *v1alpha1.SharingAgreement) {
		outbound(a)
		a.Spec.Partner.CIDRs = []string{"198.51.100.0/28"}
		a.Spec.Partner.TLS = &v1alpha1.PartnerTLS{CABundle: v1alpha1.SecretKeyReference{Name: "wc-ca", Key: "bundle.pem"}}
	})
	eventually(t, timeout, func() error {
		if err := getInto(ns, "dossiers-egress", deployment); err != nil {
			return err
		}
		want := []string{"verwijsindex/ca.crt", "verwijsindex/tls.crt", "verwijsindex/tls.key", "woningcorporatie/ca.crt"}
		if got := projectedPaths(deployment.Spec.Template.Spec); !slices.Equal(got, want) {
			return fmt.Errorf("TLS files projected %v; want %v", got, want)
		}
		return nil
	})
	eventually(t, timeout, func() error {
		cm := &corev1.ConfigMap{}
		if err := getInto(ns, "dossiers-egress-policy", cm); err != nil {
			return err
		}
		doc, err := accesspolicy.DecodeEgress([]byte(cm.Data[accesspolicy.EgressConfigMapKey]))
		if err != nil {
			return err
		}
		if doc.Agreement("verwijsindex") == nil || doc.Agreement("woningcorporatie") == nil {
			return fmt.Errorf("egress document has %d agreements; want both", len(doc.Agreements))
		}
		return nil
	})
	eventually(t, timeout, func() error { return gatewayAdmits(ns, "198.51.100.0/28") })

	// The routes leave one agreement, the other is deleted: everything goes.
	updateRetrying(t, vi, func(a *v1alpha1.SharingAgreement) { a.Spec.OutboundRoutes = nil })
	wc := &v1alpha1.SharingAgreement{}
	if err := getInto(ns, "woningcorporatie", wc); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, wc); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		ns, name string
		obj      client.Object
	}{{ns, "dossiers-egress", &appsv1.Deployment{}}, {ns, "dossiers-egress", &policyv1.PodDisruptionBudget{}}, {ns, "dossiers-egress", &corev1.Service{}}, {ns, "dossiers-egress", &corev1.ServiceAccount{}},
		{ns, "dossiers-egress", &rbacv1.Role{}}, {ns, "dossiers-egress", &rbacv1.RoleBinding{}}, {ns, "dossiers-egress", &networkingv1.NetworkPolicy{}},
		{ns, "dossiers-to-egress", &networkingv1.NetworkPolicy{}}, {ns, "dossiers-egress-policy", &corev1.ConfigMap{}},
		{"", "dossierguard-egress-" + ns + "-dossiers", &rbacv1.ClusterRoleBinding{}}} {
		eventually(t, timeout, func() error { return gone(o.ns, o.name, o.obj) })
	}
	eventually(t, timeout, egressGated(store, v1alpha1.ReasonNoOutboundAgreements))
	// Without outbound routes the agreement admits the workload directly again.
	eventually(t, timeout, func() error {
		if exists, err := policyExists(ns, "share-verwijsindex"); err != nil || !exists {
			return fmt.Errorf("share-verwijsindex exists=%v (%v); want it back for direct egress", exists, err)
		}
		return nil
	})
}

// TestStoreDeletionRemovesTokenReviewBinding: the cluster-scoped binding
// has no owner reference; the store's finalizer takes it away.
func TestStoreDeletionRemovesTokenReviewBinding(t *testing.T) {
	ns, store := readyStore(t)
	newAgreement(t, ns, "verwijsindex", outbound)
	name := "dossierguard-egress-" + ns + "-dossiers"
	eventually(t, timeout, func() error { return getInto("", name, &rbacv1.ClusterRoleBinding{}) })
	if err := k8s.Delete(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error { return gone("", name, &rbacv1.ClusterRoleBinding{}) })
}

func egressGated(store *v1alpha1.DossierStore, reason string) func() error {
	return func() error {
		s := &v1alpha1.DossierStore{}
		if err := getInto(store.Namespace, store.Name, s); err != nil {
			return err
		}
		c := findControl(s.Status.Compliance, v1alpha1.ControlEgressGated)
		if c == nil || c.Reason != reason {
			return fmt.Errorf("EgressGated = %+v; want reason %s", c, reason)
		}
		return nil
	}
}

// gatewayAdmits: the gateway's NetworkPolicy has an egress rule to cidr.
func gatewayAdmits(ns, cidr string) error {
	p := &networkingv1.NetworkPolicy{}
	if err := getInto(ns, "dossiers-egress", p); err != nil {
		return err
	}
	for _, r := range p.Spec.Egress {
		for _, to := range r.To {
			if to.IPBlock != nil && to.IPBlock.CIDR == cidr {
				return nil
			}
		}
	}
	return fmt.Errorf("the gateway's NetworkPolicy does not admit %s: %+v", cidr, p.Spec.Egress)
}

// projectedPaths are the paths of the gateway's partner TLS volume.
func projectedPaths(pod corev1.PodSpec) []string {
	var paths []string
	for _, v := range pod.Volumes {
		if v.Name != "partners" || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				for _, i := range s.Secret.Items {
					paths = append(paths, i.Path)
				}
			}
		}
	}
	return paths
}

// TestStoreWithGatewayMakesNoWrites: once the gateway is applied, an
// unchanged store with an outbound agreement is reconciled without a
// single write (the Deployment, Service, ClusterRoleBinding and the rest
// compare equal to what was applied).
func TestStoreWithGatewayMakesNoWrites(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	newAgreement(t, ns, "verwijsindex", outbound)
	eventually(t, timeout, func() error {
		return getInto("", "dossierguard-egress-"+ns+"-dossiers", &rbacv1.ClusterRoleBinding{})
	})
	eventually(t, timeout, func() error { return gatewayAdmits(ns, "192.0.2.32/28") })
	time.Sleep(time.Second) // let the manager settle

	writes := &atomic.Int64{}
	r := &controllers.DossierStoreReconciler{Client: countingClient{Client: mgrClient, n: writes}, Reader: k8s, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace,
		Isolation: testIsolation, EgressTokenReviewRole: testEgressTokenReviewRole}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d writes reconciling an unchanged store with its gateway; want 0", n)
	}
}

// deleteRecorder passes every call on and notes the kind and name of each
// Delete.
type deleteRecorder struct {
	client.Client
	deleted *[]string
}

func (c deleteRecorder) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	*c.deleted = append(*c.deleted, fmt.Sprintf("%T %s", o, o.GetName()))
	return c.Client.Delete(ctx, o, opts...)
}

// TestEgressDisruptionBudgetFollowsReplicas: an installation that runs one
// gateway pod per store removes the budget (it would only block drains)
// and applies a single replica; one that runs more puts it back.
func TestEgressDisruptionBudgetFollowsReplicas(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	newAgreement(t, ns, "verwijsindex", outbound)
	eventually(t, timeout, func() error { return getInto(ns, "dossiers-egress", &policyv1.PodDisruptionBudget{}) })

	var deleted []string
	single := &controllers.DossierStoreReconciler{Client: deleteRecorder{Client: mgrClient, deleted: &deleted}, Reader: k8s, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace,
		Isolation: testIsolation, EgressTokenReviewRole: testEgressTokenReviewRole, EgressReplicas: 1}
	if _, err := single.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(deleted, "*v1.PodDisruptionBudget dossiers-egress") {
		t.Errorf("with one replica the budget was not removed; deletes %v", deleted)
	}
	// The running manager asks for the default again: the budget returns.
	eventually(t, timeout, func() error {
		d := &appsv1.Deployment{}
		if err := getInto(ns, "dossiers-egress", d); err != nil {
			return err
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != resources.DefaultEgressReplicas {
			return fmt.Errorf("replicas %v", d.Spec.Replicas)
		}
		return getInto(ns, "dossiers-egress", &policyv1.PodDisruptionBudget{})
	})
}
