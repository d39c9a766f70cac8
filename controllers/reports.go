package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"slices"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// reportObjects are the kept report kinds as metadata-only objects, for
// the cache and the watches: the manager tells a report in step from its
// metadata (reportInStep), so it never holds a report's results.
func (k ReportKinds) reportObjects() []client.Object {
	var out []client.Object
	for _, gvk := range k.gvks() {
		out = append(out, reportMetadata(gvk))
	}
	return out
}

// gvks are the kept report kinds.
func (k ReportKinds) gvks() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	if k.OpenReports {
		out = append(out, resources.ReportGVK)
	}
	if k.PolicyReports {
		out = append(out, resources.PolicyReportGVK)
	}
	return out
}

// reportMetadata is an empty metadata-only object of a report kind.
func reportMetadata(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
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
	// Applied as an unstructured object, the PolicyReport too, so that
	// the API server's answer is kept whole, managed fields and all.
	data, err := json.Marshal(resources.ComplianceReport(s))
	if err != nil {
		return 0, fmt.Errorf("encode the OpenReports Report: %w", err)
	}
	desired := &unstructured.Unstructured{}
	if err := desired.UnmarshalJSON(data); err != nil {
		return 0, fmt.Errorf("decode the OpenReports Report: %w", err)
	}
	return w.syncReport(ctx, resources.ReportGVK, client.ApplyConfigurationFromUnstructured(desired), "OpenReports Report")
}

func (w reportWriter) syncPolicyReport(ctx context.Context, s resources.ReportSubject) (int, error) {
	desired, err := resources.CompliancePolicyReport(s)
	if err != nil {
		return 0, err
	}
	return w.syncReport(ctx, resources.PolicyReportGVK, client.ApplyConfigurationFromUnstructured(desired), "PolicyReport")
}

// syncReport applies desired, a report of kind gvk, unless the cached
// report's metadata says it is in step with it. When someone else still
// owns some of the content after the apply (they wrote the same values,
// which apply shares rather than takes), it remembers the report as
// applied (knownApplied), by the resourceVersion the API server answered
// with, so that the report is not applied again for that.
func (w reportWriter) syncReport(ctx context.Context, gvk schema.GroupVersionKind, desired applyConfiguration, what string) (int, error) {
	want, err := wantedReportOf(desired, gvk)
	if err != nil {
		return 0, err
	}
	key := reportMemoKey(gvk, want.meta.Annotations[v1alpha1.AnnotationReportHash])
	live := reportMetadata(gvk)
	err = w.client.Get(ctx, client.ObjectKeyFromObject(want.meta), live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return 0, fmt.Errorf("read the compliance report: %w", err)
	case knownApplied.holds(live, key) || reportInStep(live, want):
		return 0, nil
	}
	if err := w.client.Apply(ctx, desired, client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
		return 0, fmt.Errorf("apply the %s: %w", what, err)
	}
	// The API server's answer is decoded into desired.
	if applied, err := wantedReportOf(desired, gvk); err == nil && applied.meta.ResourceVersion != "" && othersOwnContent(applied.meta.ManagedFields) {
		knownApplied.remember(applied.meta, key)
	}
	return 1, nil
}

// wantedReport is what a report in step holds, as the manager can see it
// from the cache: its metadata, and the fields of its content.
type wantedReport struct {
	meta *metav1.PartialObjectMetadata
	// content is each top-level field of the report but its type and
	// metadata (source, scope, summary, results), encoded.
	content map[string]json.RawMessage
}

// wantedReportOf reads a report's apply configuration.
func wantedReportOf(desired applyConfiguration, gvk schema.GroupVersionKind) (wantedReport, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return wantedReport{}, fmt.Errorf("encode the compliance report: %w", err)
	}
	want := wantedReport{meta: reportMetadata(gvk)}
	if err := json.Unmarshal(data, want.meta); err != nil {
		return wantedReport{}, fmt.Errorf("decode the compliance report's metadata: %w", err)
	}
	want.meta.SetGroupVersionKind(gvk)
	if err := json.Unmarshal(data, &want.content); err != nil {
		return wantedReport{}, fmt.Errorf("decode the compliance report's content: %w", err)
	}
	for _, f := range []string{"apiVersion", "kind", "metadata", "status"} {
		delete(want.content, f)
	}
	return want, nil
}

// reportMemoKey is what a report of kind gvk with content hash is
// remembered by in knownApplied.
func reportMemoKey(gvk schema.GroupVersionKind, hash string) []byte {
	return []byte("report\x00" + gvk.String() + "\x00" + hash)
}

// reportInStep says whether the live report, as its metadata shows it,
// holds everything dossierguard writes into it: its labels, its controller
// owner reference, and the content whose hash it wrote as
// v1alpha1.AnnotationReportHash, unchanged by anyone since. The content of
// a report is only ever dossierguard's, and the API server records who
// wrote which field: a field someone else changed or added is theirs in
// their managed-fields entry (othersOwnContent), and a field someone else
// removed is no longer in dossierguard's (ownsContent). Such a report is
// applied again, which takes the fields back. A report without a hash (one
// written before the annotation existed) is never in step.
func reportInStep(live *metav1.PartialObjectMetadata, want wantedReport) bool {
	hash := want.meta.Annotations[v1alpha1.AnnotationReportHash]
	if hash == "" || live.Annotations[v1alpha1.AnnotationReportHash] != hash {
		return false
	}
	for k, v := range want.meta.Labels {
		if live.Labels[k] != v {
			return false
		}
	}
	for _, o := range want.meta.OwnerReferences {
		if !slices.ContainsFunc(live.OwnerReferences, func(l metav1.OwnerReference) bool { return equality.Semantic.DeepEqual(o, l) }) {
			return false
		}
	}
	return ownsContent(live.ManagedFields, want.content) && !othersOwnContent(live.ManagedFields)
}

// ownsContent says whether dossierguard's applied fields hold every field
// of content: each top-level field, and each field of an object that it
// owns field by field (the summary; the scope and the results are owned
// whole, as atomic).
func ownsContent(entries []metav1.ManagedFieldsEntry, content map[string]json.RawMessage) bool {
	i := slices.IndexFunc(entries, func(e metav1.ManagedFieldsEntry) bool {
		return e.Manager == resources.FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.FieldsV1 != nil
	})
	if i < 0 {
		return false
	}
	var owned map[string]json.RawMessage
	if err := json.Unmarshal(entries[i].FieldsV1.GetRawBytes(), &owned); err != nil {
		return false
	}
	for k, v := range content {
		f, ok := owned["f:"+k]
		if !ok {
			return false
		}
		var sub, ownedSub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) != nil || json.Unmarshal(f, &ownedSub) != nil || len(ownedSub) == 0 {
			continue // a value, or an object owned whole
		}
		for sk := range sub {
			if _, ok := ownedSub["f:"+sk]; !ok {
				return false
			}
		}
	}
	return true
}

// othersOwnContent says whether a managed-fields entry of a field manager
// other than dossierguard owns a field outside the metadata.
func othersOwnContent(entries []metav1.ManagedFieldsEntry) bool {
	for _, e := range entries {
		if e.Manager == resources.FieldOwner || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &fields); err != nil {
			return true // unreadable: not known to be only metadata
		}
		delete(fields, "f:metadata")
		if len(fields) > 0 {
			return true
		}
	}
	return false
}

// reportContentFields trims a report's managed fields on its way into the
// cache to what reportInStep reads: which manager owns which field of the
// content. Every entry loses its f:metadata (the labels, annotations and
// owners it wrote, which nothing reads), and an entry left with no field
// is dropped. Anything that is not an object passes unchanged.
func reportContentFields(in any) (any, error) {
	return keptManagedFields(in, reportContentEntry)
}

// reportContentEntry is one managed-fields entry of a report without its
// f:metadata; false when nothing else is left.
func reportContentEntry(e metav1.ManagedFieldsEntry) (metav1.ManagedFieldsEntry, bool) {
	if e.FieldsV1 == nil {
		return e, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &fields); err != nil {
		return e, true // kept whole: reportInStep does not take it as only metadata
	}
	delete(fields, "f:metadata")
	if len(fields) == 0 {
		return e, false
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return e, true
	}
	e.FieldsV1 = metav1.NewFieldsV1(string(raw))
	return e, true
}

// reportSubject is what a resource's report is made from.
func reportSubject(kind string, obj client.Object, store string, status *v1alpha1.CommonStatus) resources.ReportSubject {
	return resources.ReportSubject{Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: obj.GetUID(), Store: store, Status: status}
}
