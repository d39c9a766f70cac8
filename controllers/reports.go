package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/go-logr/logr"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// +kubebuilder:rbac:groups=openreports.io,resources=reports,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=wgpolicyk8s.io,resources=policyreports,verbs=get;list;watch;create;patch

// ReportKinds says which compliance reports the reconcilers keep, one per
// resource: OpenReports Reports (openreports.io/v1alpha1) and wg-policy
// PolicyReports (wgpolicyk8s.io/v1alpha2).
type ReportKinds struct {
	OpenReports   bool
	PolicyReports bool
}

// Any says whether any report is kept.
func (k ReportKinds) Any() bool { return k.OpenReports || k.PolicyReports }

// DetectReportKinds keeps of the wanted report kinds those whose CRD the
// cluster serves, and logs one line for each wanted kind whose CRD is not
// installed: its reports are then off until the manager restarts. An error
// other than a missing kind (discovery failing) is returned.
func DetectReportKinds(mapper meta.RESTMapper, want ReportKinds, log logr.Logger) (ReportKinds, error) {
	served := func(gvk schema.GroupVersionKind, crd string) (bool, error) {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case err == nil:
			return true, nil
		case meta.IsNoMatchError(err):
			log.Info("The CRD of the compliance reports is not installed: no reports of this kind are written; install it and restart the manager to have them",
				"crd", crd, "apiVersion", gvk.GroupVersion().String(), "kind", gvk.Kind)
			return false, nil
		default:
			return false, fmt.Errorf("look up %s: %w", crd, err)
		}
	}
	var got ReportKinds
	var err error
	if want.OpenReports {
		if got.OpenReports, err = served(resources.ReportGVK, "reports.openreports.io"); err != nil {
			return ReportKinds{}, err
		}
	}
	if want.PolicyReports {
		if got.PolicyReports, err = served(resources.PolicyReportGVK, "policyreports.wgpolicyk8s.io"); err != nil {
			return ReportKinds{}, err
		}
	}
	return got, nil
}

// reportObjects are empty objects of the kept report kinds, for the cache
// and the watches.
func (k ReportKinds) reportObjects() []client.Object {
	var out []client.Object
	if k.OpenReports {
		out = append(out, &openreportsv1alpha1.Report{})
	}
	if k.PolicyReports {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(resources.PolicyReportGVK)
		out = append(out, u)
	}
	return out
}

// ownReports has a reconciler's controller watch the reports it keeps, so
// that a report edited or deleted by someone else is written again.
func ownReports(b *builder.Builder, kinds ReportKinds) *builder.Builder {
	for _, o := range kinds.reportObjects() {
		b = b.Owns(o)
	}
	return b
}

// syncReports keeps the compliance reports of one resource in step with
// its status: it applies each kept kind of report that differs from what the
// status says, and makes no write when the report already says it. It is
// called only once the status is written (or needed no write), so a report
// never runs ahead of the status. It reports the writes made.
func syncReports(ctx context.Context, c client.Client, kinds ReportKinds, s resources.ReportSubject) (int, error) {
	if !kinds.Any() {
		return 0, nil
	}
	return reportWriter{client: c, kinds: kinds}.sync(ctx, s)
}

// reportWriter writes the kept kinds of reports through client.
type reportWriter struct {
	client client.Client
	kinds  ReportKinds
}

func (w reportWriter) sync(ctx context.Context, s resources.ReportSubject) (int, error) {
	writes := 0
	if w.kinds.OpenReports {
		wrote, err := w.syncOpenReport(ctx, s)
		if err != nil {
			return writes, err
		}
		writes += wrote
	}
	if w.kinds.PolicyReports {
		wrote, err := w.syncPolicyReport(ctx, s)
		if err != nil {
			return writes, err
		}
		writes += wrote
	}
	return writes, nil
}

func (w reportWriter) syncOpenReport(ctx context.Context, s resources.ReportSubject) (int, error) {
	desired := resources.ComplianceReport(s)
	want, err := typedFrom(desired, &openreportsv1alpha1.Report{})
	if err != nil {
		return 0, err
	}
	live := &openreportsv1alpha1.Report{}
	same, err := w.current(ctx, want.(*openreportsv1alpha1.Report), live, func() (*openreportsv1alpha1.Report, error) { return live, nil })
	if err != nil || same {
		return 0, err
	}
	if err := w.client.Apply(ctx, desired, client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
		return 0, fmt.Errorf("apply the OpenReports Report: %w", err)
	}
	return 1, nil
}

func (w reportWriter) syncPolicyReport(ctx context.Context, s resources.ReportSubject) (int, error) {
	desired, err := resources.CompliancePolicyReport(s)
	if err != nil {
		return 0, err
	}
	want, err := asReport(desired)
	if err != nil {
		return 0, err
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(resources.PolicyReportGVK)
	same, err := w.current(ctx, want, live, func() (*openreportsv1alpha1.Report, error) { return asReport(live) })
	if err != nil || same {
		return 0, err
	}
	if err := w.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(desired), client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
		return 0, fmt.Errorf("apply the PolicyReport: %w", err)
	}
	return 1, nil
}

// current reads the live report into live from the cache and says whether
// it already holds want; decoded turns live into the fields of a Report.
func (w reportWriter) current(ctx context.Context, want *openreportsv1alpha1.Report, live client.Object, decoded func() (*openreportsv1alpha1.Report, error)) (bool, error) {
	err := w.client.Get(ctx, client.ObjectKey{Namespace: want.Namespace, Name: want.Name}, live)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the compliance report: %w", err)
	}
	got, err := decoded()
	if err != nil {
		return false, err
	}
	return reportHolds(got, want), nil
}

// asReport reads a PolicyReport into the fields of a Report, which are the
// same.
func asReport(u *unstructured.Unstructured) (*openreportsv1alpha1.Report, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encode the PolicyReport: %w", err)
	}
	r := &openreportsv1alpha1.Report{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode the PolicyReport: %w", err)
	}
	return r, nil
}

// reportHolds says whether the live report holds everything dossierguard
// writes into it: its labels, its controller owner reference, and the whole
// of source, scope, summary and results (a report's content is only ever
// dossierguard's).
func reportHolds(live, want *openreportsv1alpha1.Report) bool {
	for k, v := range want.Labels {
		if live.Labels[k] != v {
			return false
		}
	}
	for _, o := range want.OwnerReferences {
		found := false
		for _, l := range live.OwnerReferences {
			if equality.Semantic.DeepEqual(o, l) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return live.Source == want.Source &&
		equality.Semantic.DeepEqual(live.Scope, want.Scope) &&
		equality.Semantic.DeepEqual(live.ScopeSelector, want.ScopeSelector) &&
		equality.Semantic.DeepEqual(live.Configuration, want.Configuration) &&
		live.Summary == want.Summary &&
		equality.Semantic.DeepEqual(live.Results, want.Results)
}

// reportSubject is what a resource's report is made from.
func reportSubject(kind string, obj client.Object, store string, status *v1alpha1.CommonStatus) resources.ReportSubject {
	return resources.ReportSubject{Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: obj.GetUID(), Store: store, Status: status}
}
