package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=datasubjectrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete

// reconcileEgressGateway deploys the store's egress gateway while at least
// one of its agreements has outbound routes (resources.Outbound), and
// removes every object of it when the last one goes. It reports what the
// EgressGated control needs.
func (r *DossierStoreReconciler) reconcileEgressGateway(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) (compliance.EgressFacts, error) {
	agreements := &v1alpha1.SharingAgreementList{}
	if err := r.List(ctx, agreements, client.InNamespace(store.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
		return compliance.EgressFacts{Failed: true}, fmt.Errorf("list sharing agreements: %w", err)
	}
	var outbound, inForce []v1alpha1.SharingAgreement
	for _, a := range agreements.Items {
		if resources.Outbound(&a) {
			outbound = append(outbound, a)
			if a.Status.InForce {
				inForce = append(inForce, a)
			}
		}
	}
	facts := compliance.EgressFacts{}
	for _, a := range outbound {
		facts.Outbound = append(facts.Outbound, a.Name)
	}
	if len(outbound) == 0 {
		return facts, r.removeEgressGateway(ctx, store)
	}
	if err := r.applyEgressPolicy(ctx, store, agreements.Items, now); err != nil {
		return compliance.EgressFacts{Outbound: facts.Outbound, Failed: true}, err
	}
	if err := r.applyEgressGateway(ctx, store, outbound, inForce); err != nil {
		return compliance.EgressFacts{Outbound: facts.Outbound, Failed: true}, err
	}
	deployment := &appsv1.Deployment{}
	err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.EgressGatewayName(store)}, deployment)
	if client.IgnoreNotFound(err) != nil {
		return compliance.EgressFacts{Outbound: facts.Outbound, Failed: true}, fmt.Errorf("read the egress gateway Deployment: %w", err)
	}
	facts.Ready = err == nil && deploymentReady(deployment)
	facts.Deployed, facts.Gateway = true, resources.EgressGatewayName(store)
	for _, a := range outbound {
		policy := &networkingv1.NetworkPolicy{}
		switch err := r.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: resources.AgreementPolicyName(&a)}, policy); {
		case apierrors.IsNotFound(err):
		case err != nil:
			facts.Failed = true
			return facts, fmt.Errorf("read the partner NetworkPolicy of %s: %w", a.Name, err)
		case slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeEgress):
			facts.DirectEgress = append(facts.DirectEgress, a.Name)
		}
	}
	return facts, nil
}

// applyEgressPolicy writes the egress document of every agreement with an
// endpoint (in force or not: the gateway decides per request), refusing
// those the operator refuses whatever the time, as agreementEntries does.
func (r *DossierStoreReconciler) applyEgressPolicy(ctx context.Context, store *v1alpha1.DossierStore, agreements []v1alpha1.SharingAgreement, now time.Time) error {
	view := compliance.StoreView{Found: true, Ready: true, Categories: store.Spec.DataCategories}
	entries := make([]accesspolicy.EgressAgreement, 0, len(agreements))
	for i := range agreements {
		a := &agreements[i]
		if !a.DeletionTimestamp.IsZero() {
			continue
		}
		refused := ""
		if v := compliance.EvaluateAgreement(a, view, now); v.Reason == v1alpha1.ReasonMinimisationViolated {
			refused = v.Reason
		}
		if e, ok := accesspolicy.EgressEntry(a, refused); ok {
			entries = append(entries, e)
		}
	}
	activities := &v1alpha1.ProcessingActivityList{}
	if err := r.List(ctx, activities, client.InNamespace(store.Namespace)); err != nil {
		return fmt.Errorf("list processing activities: %w", err)
	}
	document, hash, err := accesspolicy.EncodeEgress(accesspolicy.BuildEgress(store, entries, activities.Items))
	if err != nil {
		return err
	}
	if _, err := applyChild(ctx, r.Client, resources.EgressConfigMap(store, document, hash), &corev1.ConfigMap{}); err != nil {
		return fmt.Errorf("apply the egress policy ConfigMap: %w", err)
	}
	return nil
}

// applyEgressGateway applies the gateway's identity, access, Deployment,
// Service and NetworkPolicies.
func (r *DossierStoreReconciler) applyEgressGateway(ctx context.Context, store *v1alpha1.DossierStore, outbound, inForce []v1alpha1.SharingAgreement) error {
	apiSlices := &discoveryv1.EndpointSliceList{}
	if err := r.Reader.List(ctx, apiSlices, client.InNamespace("default"),
		client.MatchingLabels{discoveryv1.LabelServiceName: resources.APIServerServiceLabel}); err != nil {
		return fmt.Errorf("list the API server's EndpointSlices: %w", err)
	}
	opts := resources.EgressOptions{Replicas: r.EgressReplicas, Image: r.AuditProxy.Image, LogbookURL: r.AuditProxy.LogbookURL, LogSizeLimit: r.AuditProxy.LogSizeLimit}
	if !opts.LogSizeLimit.IsZero() {
		opts.LogMaxBytes = webhook.LogMaxBytes(opts.LogSizeLimit)
	}
	children := []struct {
		what    string
		desired applyConfiguration
		live    client.Object
	}{
		{"ServiceAccount", resources.EgressServiceAccount(store), &corev1.ServiceAccount{}},
		{"Role", resources.EgressRole(store), &rbacv1.Role{}},
		{"RoleBinding", resources.EgressRoleBinding(store), &rbacv1.RoleBinding{}},
		{"NetworkPolicy", resources.EgressGatewayPolicy(store, inForce, r.Isolation, resources.APIServerEndpoints(apiSlices.Items)), &networkingv1.NetworkPolicy{}},
		{"workload NetworkPolicy", resources.EgressAccessPolicy(store), &networkingv1.NetworkPolicy{}},
		{"Service", resources.EgressService(store), &corev1.Service{}},
		{"Deployment", resources.EgressDeployment(store, outbound, opts), &appsv1.Deployment{}},
	}
	if r.EgressTokenReviewRole != "" {
		children = append(children, struct {
			what    string
			desired applyConfiguration
			live    client.Object
		}{"TokenReview ClusterRoleBinding", resources.EgressTokenReviewBinding(store, r.EgressTokenReviewRole), &rbacv1.ClusterRoleBinding{}})
	}
	for _, c := range children {
		if _, err := applyChild(ctx, r.Client, c.desired, c.live); err != nil {
			return fmt.Errorf("apply the egress gateway %s: %w", c.what, err)
		}
	}
	return r.applyEgressDisruptionBudget(ctx, store, opts)
}

// applyEgressDisruptionBudget keeps the gateway's PodDisruptionBudget while
// it runs more than one pod, and removes it when it runs one.
func (r *DossierStoreReconciler) applyEgressDisruptionBudget(ctx context.Context, store *v1alpha1.DossierStore, opts resources.EgressOptions) error {
	budget := resources.EgressPodDisruptionBudget(store, opts)
	if budget == nil {
		pdb := &policyv1.PodDisruptionBudget{}
		pdb.Namespace, pdb.Name = store.Namespace, resources.EgressGatewayName(store)
		return r.deleteIfCached(ctx, pdb)
	}
	if _, err := applyChild(ctx, r.Client, budget, &policyv1.PodDisruptionBudget{}); err != nil {
		return fmt.Errorf("apply the egress gateway PodDisruptionBudget: %w", err)
	}
	return nil
}

// removeEgressGateway deletes every object of the store's gateway; each
// that is already gone is fine.
func (r *DossierStoreReconciler) removeEgressGateway(ctx context.Context, store *v1alpha1.DossierStore) error {
	name := resources.EgressGatewayName(store)
	in := func(o client.Object, n string) client.Object {
		o.SetNamespace(store.Namespace)
		o.SetName(n)
		return o
	}
	var errs []error
	for _, o := range []client.Object{
		in(&policyv1.PodDisruptionBudget{}, name),
		in(&appsv1.Deployment{}, name), in(&corev1.Service{}, name), in(&networkingv1.NetworkPolicy{}, name),
		in(&networkingv1.NetworkPolicy{}, resources.EgressAccessPolicyName(store)),
		in(&rbacv1.RoleBinding{}, name), in(&rbacv1.Role{}, name), in(&corev1.ServiceAccount{}, name),
		in(&corev1.ConfigMap{}, resources.EgressPolicyName(store)),
	} {
		errs = append(errs, r.deleteIfCached(ctx, o))
	}
	return errors.Join(append(errs, r.removeEgressTokenReviewBinding(ctx, store))...)
}

// removeEgressTokenReviewBinding deletes the gateway's cluster-scoped
// TokenReview binding, if there is one.
func (r *DossierStoreReconciler) removeEgressTokenReviewBinding(ctx context.Context, store *v1alpha1.DossierStore) error {
	binding := &rbacv1.ClusterRoleBinding{}
	binding.Name = resources.EgressTokenReviewName(store)
	return r.deleteIfCached(ctx, binding)
}

// deleteIfCached deletes o when the cache holds it, so that a store
// without a gateway makes no writes; every kind of the gateway is cached
// with dossierguard's label, which all of its objects carry.
func (r *DossierStoreReconciler) deleteIfCached(ctx context.Context, o client.Object) error {
	switch err := r.Get(ctx, client.ObjectKeyFromObject(o), o); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read the egress gateway %T %s: %w", o, o.GetName(), err)
	}
	if err := r.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the egress gateway %T %s: %w", o, o.GetName(), err)
	}
	return nil
}

// deploymentReady: the current spec is rolled out and a pod is available.
func deploymentReady(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= 1 &&
		d.Status.UpdatedReplicas >= 1
}
