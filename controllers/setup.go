package controllers

import (
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// Options configure every reconciler.
type Options struct {
	// Clock, the real clock when nil.
	Clock clock.PassiveClock
	// SweeperImage runs the retention sweeps; DefaultSweeperImage when empty.
	SweeperImage string
	// Workers is the number of concurrent reconciles per kind;
	// DefaultWorkers when zero.
	Workers int
	// Statutes is the statutory retention per service; the built-in table when nil.
	Statutes map[v1alpha1.Service]compliance.Statute
	// AuditProxy is what the webhook injects, which the AuditActive control
	// checks; when nil, the SweeperImage as a native sidecar.
	AuditProxy *webhook.Config
	// Certs issues the audit proxies' serving certificates with the
	// operator's CA; ProxyIssuer, when set, has cert-manager issue them
	// instead. With neither, AuditActive reports the certificate missing.
	Certs       ServingCertIssuer
	ProxyIssuer *ProxyIssuerRef
	// TrustNamespace is the operator's namespace, where the store
	// reconciler keeps every public checkpoint key of every store in the
	// ConfigMap resources.AuditTrustName. Required.
	TrustNamespace string
	// Reports are the compliance reports kept for every resource, as
	// DetectReportKinds found them; CacheOptions must have been given the
	// same.
	Reports ReportKinds
	// Isolation adds the installation's rules (the logbook, the proxies'
	// metrics) to every store's isolation policy.
	Isolation resources.IsolationExtras
	// EgressTokenReviewRole is the ClusterRole, installed with the
	// operator, that lets the stores' egress gateways create TokenReviews.
	EgressTokenReviewRole string
	// EgressReplicas is how many pods each store's egress gateway runs
	// (resources.DefaultEgressReplicas when 0).
	EgressReplicas int32
}

// DefaultSweeperImage is the image `make image` builds.
const DefaultSweeperImage = "dossierguard:dev"

// DefaultWorkers is how many reconciles of each kind run at once by
// default. A store's first reconcile is some thirty requests to the API
// server one after the other, so the manager's pace is that of the API
// server's answers, not of its own CPU: with 4 at once, 300 new stores took
// 0.2 cores of the manager and most of two minutes (docs/benchmarks.md).
const DefaultWorkers = 16

// CacheOptions keep the operator cheap: Secrets, ConfigMaps and every
// other kind of child are cached only when dossierguard manages them
// (label app.kubernetes.io/managed-by=dossierguard, which every builder in
// internal/resources sets), never every one of the cluster. A Get of a
// child without that label reports NotFound from the cache (applyChild
// then applies it, label and all), and the Owns watches see only labelled
// objects. The compliance reports of the kept kinds are cached the same
// way, never the reports of other tools (which can be many), and as
// metadata only: a report's content repeats its resource's status, and the
// report writer tells a report in step from its labels, owner, content hash
// and managed fields (reportInStep). Pods are not cached at all: the store
// reconciler lists them through the uncached reader.
//
// Managed fields are what a cached object costs most beside its spec, and
// are kept only where they are read. The children dossierguard applies
// keep the managed fields of its own field owner (ownManagedFieldsOnly),
// which applyChild reads to know what it applied last; those it tells in
// step from their metadata (comparedByHash) are cached without the content
// it writes into them (trimmedChild): a Role's rules, a NetworkPolicy's
// rules, a CronJob's job template. The resources of
// dossierguard's API keep none (withoutManagedFields): dossierguard never
// applies them (it patches their status and updates their metadata). The
// reports keep of their managed fields which manager owns which field of
// their content (reportContentFields), which says whether anyone else
// changed it. An update of an object read without
// managed fields keeps those on the server: the API server takes an
// update with no managed fields as one that does not know them, never as
// one that clears them (only a list of one empty entry does), whereas an
// update with some managed fields replaces them all. So Secrets, which
// are both applied (the proxy's certificate) and updated as read (a key
// version), are cached whole. Every cached object shares the strings that
// many of them repeat (interned): labels, owners, managers, and the
// conditions and controls of the statuses.
func CacheOptions(reports ReportKinds) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{resources.LabelManagedBy: resources.ManagedByValue})
	trim, strip, content := interned(ownManagedFieldsOnly), interned(withoutManagedFields), interned(trimmedChild)
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:    {Label: managed, Transform: interned(unchanged)},
			&corev1.ConfigMap{}: {Label: managed, Transform: trim},
			// Only the erasure Jobs the operator starts (they carry the
			// label), not every Job of the cluster.
			&batchv1.Job{}: {Label: managed, Transform: trim},
			// Only the children dossierguard applies (every builder labels
			// them), not every claim, policy, Role and CronJob of the
			// cluster's namespaces.
			&corev1.PersistentVolumeClaim{}: {Label: managed, Transform: trim},
			// Told in step from their metadata (applyHashed): cached
			// without the content dossierguard writes into them.
			&networkingv1.NetworkPolicy{}:  {Label: managed, Transform: content},
			&rbacv1.Role{}:                 {Label: managed, Transform: content},
			&rbacv1.RoleBinding{}:          {Label: managed, Transform: content},
			&batchv1.CronJob{}:             {Label: managed, Transform: content},
			&v1alpha1.DossierStore{}:       {Transform: strip},
			&v1alpha1.AccessRole{}:         {Transform: strip},
			&v1alpha1.SharingAgreement{}:   {Transform: strip},
			&v1alpha1.RetentionPolicy{}:    {Transform: strip},
			&v1alpha1.DataSubjectRequest{}: {Transform: strip},
			&v1alpha1.ProcessingActivity{}: {Transform: strip},
			// Only the egress gateways' objects, not the cluster's.
			&appsv1.Deployment{}:            {Label: managed, Transform: trim},
			&corev1.Service{}:               {Label: managed, Transform: trim},
			&corev1.ServiceAccount{}:        {Label: managed, Transform: content},
			&rbacv1.ClusterRoleBinding{}:    {Label: managed, Transform: trim},
			&policyv1.PodDisruptionBudget{}: {Label: managed, Transform: trim},
		},
	}
	for _, o := range reports.reportObjects() {
		opts.ByObject[o] = cache.ByObject{Label: managed, Transform: interned(reportContentFields)}
	}
	return opts
}

// ownManagedFieldsOnly trims an object on its way into the cache to the
// managed fields of dossierguard's field owner: applyChild reads those to
// know what it applied last, and nothing reads the entries of other
// managers (kubectl, the API server's controllers, the status writes),
// which would otherwise be kept for every cached object. Anything that is
// not an object passes unchanged.
func ownManagedFieldsOnly(in any) (any, error) {
	return keptManagedFields(in, func(e metav1.ManagedFieldsEntry) (metav1.ManagedFieldsEntry, bool) {
		return e, e.Manager == resources.FieldOwner
	})
}

// keptManagedFields trims an object's managed fields on its way into the
// cache to the entries keep returns, each as keep may have rewritten it.
// Anything that is not an object passes unchanged.
func keptManagedFields(in any, keep func(metav1.ManagedFieldsEntry) (metav1.ManagedFieldsEntry, bool)) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil || len(obj.GetManagedFields()) == 0 {
		return in, nil
	}
	var kept []metav1.ManagedFieldsEntry
	for _, e := range obj.GetManagedFields() {
		if e, ok := keep(e); ok {
			kept = append(kept, e)
		}
	}
	obj.SetManagedFields(kept)
	return in, nil
}

// withoutManagedFields drops every managed-fields entry of an object on its
// way into the cache, for the kinds whose managed fields nothing reads
// (CacheOptions). Anything that is not an object passes unchanged.
func withoutManagedFields(in any) (any, error) {
	if obj, err := meta.Accessor(in); err == nil && obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	return in, nil
}

// SetupAll registers every reconciler with the manager.
func SetupAll(mgr ctrl.Manager, opts Options) error {
	if opts.TrustNamespace == "" {
		return errors.New("no namespace for the audit trust ConfigMap: the public checkpoint keys must be kept outside the stores")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.SweeperImage == "" {
		opts.SweeperImage = DefaultSweeperImage
	}
	if opts.Statutes == nil {
		opts.Statutes = compliance.DefaultStatutes
	}
	proxy := webhook.Config{Image: opts.SweeperImage, NativeSidecar: true}
	if opts.AuditProxy != nil {
		proxy = *opts.AuditProxy
	}
	if err := indexStoreRefs(mgr); err != nil {
		return err
	}
	events := mgr.GetEventRecorder("dossierguard")
	if err := (&DossierStoreReconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: events, Clock: opts.Clock, AuditProxy: proxy, Certs: opts.Certs, ProxyIssuer: opts.ProxyIssuer, TrustNamespace: opts.TrustNamespace, Reports: opts.Reports, Isolation: opts.Isolation, EgressTokenReviewRole: opts.EgressTokenReviewRole, EgressReplicas: opts.EgressReplicas}).SetupWithManager(mgr, opts.Workers); err != nil {
		return err
	}
	if err := (&SharingAgreementReconciler{Client: mgr.GetClient(), Recorder: events, Clock: opts.Clock, Reports: opts.Reports}).SetupWithManager(mgr, opts.Workers); err != nil {
		return err
	}
	if err := (&AccessRoleReconciler{Client: mgr.GetClient(), Clock: opts.Clock, Reports: opts.Reports}).SetupWithManager(mgr, opts.Workers); err != nil {
		return err
	}
	if err := (&DataSubjectRequestReconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: events, Clock: opts.Clock, Reports: opts.Reports}).SetupWithManager(mgr, opts.Workers); err != nil {
		return err
	}
	if err := (&ProcessingActivityReconciler{Client: mgr.GetClient(), Reports: opts.Reports}).SetupWithManager(mgr, opts.Workers); err != nil {
		return err
	}
	return (&RetentionPolicyReconciler{Client: mgr.GetClient(), Clock: opts.Clock, Image: opts.SweeperImage, Statutes: opts.Statutes, Reports: opts.Reports}).SetupWithManager(mgr, opts.Workers)
}
