package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	openreportsac "github.com/openreports/reports-api/pkg/client/applyconfiguration/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The report kinds dossierguard writes: OpenReports, and optionally the
// wg-policy PolicyReports that have the same fields.
var (
	ReportGVK       = openreportsv1alpha1.SchemeGroupVersion.WithKind("Report")
	PolicyReportGVK = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}
)

// ReportComponent is the component label of every compliance report.
const ReportComponent = "compliance-report"

// maxNameLen is the longest object name Kubernetes accepts.
const maxNameLen = 253

// ReportSubject is the dossierguard resource a compliance report is about:
// its kind, identity, the store it belongs to and its computed status.
type ReportSubject struct {
	Kind      string
	Name      string
	Namespace string
	UID       types.UID
	// Store is the DossierStore the resource belongs to (itself, for a
	// store); the reports carry it as the privacy.dossierguard.io/store
	// label, so that one store's reports are listed together.
	Store  string
	Status *v1alpha1.CommonStatus
}

// ReportName is the name of a resource's report: its kind in lower case and
// its name, or its kind and UID when that would be longer than Kubernetes
// allows.
func ReportName(kind, name string, uid types.UID) string {
	n := strings.ToLower(kind) + "-" + name
	if len(n) > maxNameLen {
		return strings.ToLower(kind) + "-" + string(uid)
	}
	return n
}

// ReportResult maps a control's result to the OpenReports vocabulary: a
// control whose result is Unknown could not be evaluated (error), never
// counted as passing.
func ReportResult(r v1alpha1.ComplianceResult) openreportsv1alpha1.Result {
	switch r {
	case v1alpha1.ResultPass:
		return "pass"
	case v1alpha1.ResultFail:
		return "fail"
	default:
		return "error"
	}
}

// ReportProperties are a control's reason and evidence as the properties of
// its result: "reason", and "evidence.1", "evidence.2", ... in the order of
// status.compliance.
func ReportProperties(c v1alpha1.ComplianceControl) map[string]string {
	props := map[string]string{}
	if c.Reason != "" {
		props["reason"] = c.Reason
	}
	for i, e := range c.Evidence {
		props["evidence."+strconv.Itoa(i+1)] = e
	}
	if len(props) == 0 {
		return nil
	}
	return props
}

// ComplianceReport is the OpenReports Report of one resource: scoped to the
// resource, with source dossierguard, one result per control of
// status.compliance (the control as policy, its AVG/BIO reference as
// category, its message, its reason and evidence as properties) and the
// summary of the results. Each result's timestamp is when the resource's
// Compliant condition last changed. The resource owns (controls) the report,
// so that it is deleted with it.
func ComplianceReport(s ReportSubject) *openreportsac.ReportApplyConfiguration {
	labels := map[string]string{
		LabelManagedBy: ManagedByValue, LabelPartOf: ManagedByValue, LabelComponent: ReportComponent,
	}
	if s.Store != "" {
		labels[v1alpha1.LabelStore] = s.Store
	}
	var ts *metav1.Timestamp
	if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionCompliant); c != nil {
		ts = &metav1.Timestamp{Seconds: c.LastTransitionTime.Unix()}
	}
	summary := openreportsv1alpha1.ReportSummary{}
	results := make([]*openreportsac.ReportResultApplyConfiguration, 0, len(s.Status.Compliance))
	for _, c := range s.Status.Compliance {
		result := ReportResult(c.Result)
		switch result {
		case "pass":
			summary.Pass++
		case "fail":
			summary.Fail++
		default:
			summary.Error++
		}
		r := openreportsac.ReportResult().
			WithSource(v1alpha1.ReportSource).
			WithPolicy(c.Control).
			WithCategory(c.Reference).
			WithResult(result).
			WithScored(true).
			WithDescription(c.Message).
			WithProperties(ReportProperties(c))
		if ts != nil {
			r.WithTimestamp(*ts)
		}
		results = append(results, r)
	}
	report := openreportsac.Report(ReportName(s.Kind, s.Name, s.UID), s.Namespace).
		WithLabels(labels).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).
			WithKind(s.Kind).
			WithName(s.Name).
			WithUID(s.UID).
			WithController(true)).
		WithSource(v1alpha1.ReportSource).
		WithScope(corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: s.Kind,
			Namespace: s.Namespace, Name: s.Name, UID: s.UID,
		}).
		WithSummary(openreportsac.ReportSummary().
			WithPass(summary.Pass).WithFail(summary.Fail).WithWarn(0).WithError(summary.Error).WithSkip(0)).
		WithResults(results...)
	return report.WithAnnotations(map[string]string{v1alpha1.AnnotationReportHash: ReportContentHash(report)})
}

// reportContent is what a compliance report says, as ReportContentHash
// hashes it.
type reportContent struct {
	Source  *string                                        `json:"source,omitempty"`
	Scope   *corev1.ObjectReference                        `json:"scope,omitempty"`
	Summary *openreportsac.ReportSummaryApplyConfiguration `json:"summary,omitempty"`
	Results []openreportsac.ReportResultApplyConfiguration `json:"results,omitempty"`
}

// ReportContentHash is the SHA-256, in hex, of what a compliance report
// says: its source, scope, summary and results, encoded as JSON (map keys
// sorted, so the same content has the same hash). The report carries it as
// the annotation v1alpha1.AnnotationReportHash, and a PolicyReport made from
// the report the same; its labels and owner reference are metadata and
// compared as such.
func ReportContentHash(r *openreportsac.ReportApplyConfiguration) string {
	data, err := json.Marshal(reportContent{Source: r.Source, Scope: r.Scope, Summary: r.Summary, Results: r.Results})
	if err != nil {
		// Strings, numbers and maps of strings always encode; a report
		// that did not would never be taken as in step.
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// CompliancePolicyReport is the same report as a wgpolicyk8s.io/v1alpha2
// PolicyReport, for the tools that read only that format: the fields of an
// OpenReports Report but the report-level source, which that format does not
// have (each result names its source).
func CompliancePolicyReport(s ReportSubject) (*unstructured.Unstructured, error) {
	report := ComplianceReport(s)
	data, err := json.Marshal(report)
	if err != nil {
		return nil, fmt.Errorf("encode the PolicyReport: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		return nil, fmt.Errorf("decode the PolicyReport: %w", err)
	}
	delete(u.Object, "source")
	u.SetGroupVersionKind(PolicyReportGVK)
	return u, nil
}
