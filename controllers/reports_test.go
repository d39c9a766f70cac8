package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// detectReports asks the test API server, which has both report CRDs
// (testenv.StartWithReportCRDs), which reports to keep.
func detectReports() (controllers.ReportKinds, error) {
	httpClient, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		return controllers.ReportKinds{}, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(env.Config, httpClient)
	if err != nil {
		return controllers.ReportKinds{}, err
	}
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	got, err := controllers.DetectReportKinds(mapper, controllers.ReportKinds{OpenReports: true, PolicyReports: true}, log)
	if err != nil {
		return got, err
	}
	if !got.OpenReports || !got.PolicyReports || len(lines) != 0 {
		return got, fmt.Errorf("with both CRDs installed, detected %+v and logged %v; want both, silently", got, lines)
	}
	return got, nil
}

func TestReportsOffWithoutTheirCRD(t *testing.T) {
	// A cluster that serves neither report kind.
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{v1alpha1.GroupVersion})
	cases := []struct {
		name  string
		want  controllers.ReportKinds
		lines []string // the CRD each log line names
	}{
		{"OpenReports wanted", controllers.ReportKinds{OpenReports: true}, []string{"reports.openreports.io"}},
		{"both wanted", controllers.ReportKinds{OpenReports: true, PolicyReports: true}, []string{"reports.openreports.io", "policyreports.wgpolicyk8s.io"}},
		{"none wanted", controllers.ReportKinds{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lines []string
			log := funcr.New(func(_, args string) { lines = append(lines, args) }, funcr.Options{})
			got, err := controllers.DetectReportKinds(mapper, c.want, log)
			if err != nil {
				t.Fatal(err)
			}
			if got.Any() {
				t.Errorf("detected %+v without the CRDs; want reports off", got)
			}
			if len(lines) != len(c.lines) {
				t.Fatalf("logged %d lines %v; want one per wanted kind: %v", len(lines), lines, c.lines)
			}
			for i, crd := range c.lines {
				if !strings.Contains(lines[i], `"crd"="`+crd+`"`) || !strings.Contains(lines[i], "not installed") {
					t.Errorf("line %d = %s; want it to say that %s is not installed", i, lines[i], crd)
				}
			}
		})
	}
}

func getReport(ns, name string) (*openreportsv1alpha1.Report, error) {
	r := &openreportsv1alpha1.Report{}
	return r, k8s.Get(context.Background(), key(ns, name), r)
}

func getPolicyReport(ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(resources.PolicyReportGVK)
	return u, k8s.Get(context.Background(), key(ns, name), u)
}

// reportMatches checks that a report says what the resource's status says:
// one result per control, in order, with its reference, result, message,
// reason and evidence, and the summary of them.
func reportMatches(r *openreportsv1alpha1.Report, owner client.Object, kind string, controls []v1alpha1.ComplianceControl) error {
	if r.Source != v1alpha1.ReportSource || r.Scope == nil || r.Scope.Kind != kind || r.Scope.Name != owner.GetName() || r.Scope.UID != owner.GetUID() {
		return fmt.Errorf("source %q scope %+v; want %s %s", r.Source, r.Scope, kind, owner.GetName())
	}
	if !ownedBy(r, owner) {
		return fmt.Errorf("owners %v; want %s as controller, so that the report goes with it", r.OwnerReferences, owner.GetName())
	}
	if len(r.Results) != len(controls) || len(controls) == 0 {
		return fmt.Errorf("%d results for %d controls", len(r.Results), len(controls))
	}
	var sum openreportsv1alpha1.ReportSummary
	for i, c := range controls {
		res := r.Results[i]
		want := resources.ReportResult(c.Result)
		switch want {
		case "pass":
			sum.Pass++
		case "fail":
			sum.Fail++
		default:
			sum.Error++
		}
		if res.Policy != c.Control || res.Result != want || res.Category != compliance.References[c.Control] || res.Description != c.Message ||
			res.Properties["reason"] != c.Reason {
			return fmt.Errorf("result %d = %+v; want %s %s (%s)", i, res, c.Control, want, compliance.References[c.Control])
		}
		for j, e := range c.Evidence {
			if res.Properties[fmt.Sprintf("evidence.%d", j+1)] != e {
				return fmt.Errorf("result %d properties %v; want evidence %q", i, res.Properties, e)
			}
		}
	}
	if r.Summary != sum {
		return fmt.Errorf("summary %+v; want %+v", r.Summary, sum)
	}
	return nil
}

func TestStoreReportFollowsStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := plainClass(t)
	store := newStore(t, ns, sc.Name)
	// storeReportSays checks that the store's EncryptionAtRest control has
	// the result, and that its Report says what its status says.
	storeReportSays := func(result v1alpha1.ComplianceResult) func() error {
		return func() error {
			s := getStore(t, store)
			r, err := getReport(ns, "dossierstore-dossiers")
			if err != nil {
				return err
			}
			if c := findControl(s.Status.Compliance, v1alpha1.ControlEncryptionAtRest); c == nil || c.Result != result {
				return fmt.Errorf("EncryptionAtRest is %+v; want %s", c, result)
			}
			if r.Labels[v1alpha1.LabelStore] != store.Name {
				return fmt.Errorf("labels %v; want the store", r.Labels)
			}
			return reportMatches(r, s, "DossierStore", s.Status.Compliance)
		}
	}
	// On an unverified class, EncryptionAtRest fails; the report says so.
	eventually(t, timeout, storeReportSays(v1alpha1.ResultFail))
	// The platform team attests encryption: the store's status, and with it
	// the report, follows.
	setAnnotation(t, sc, "true")
	eventually(t, timeout, storeReportSays(v1alpha1.ResultPass))
	// The PolicyReport says the same.
	eventually(t, timeout, func() error {
		s := getStore(t, store)
		u, err := getPolicyReport(ns, "dossierstore-dossiers")
		if err != nil {
			return err
		}
		r := &openreportsv1alpha1.Report{}
		if err := fromUnstructured(u, r); err != nil {
			return err
		}
		// A PolicyReport names the source in each result only.
		for _, res := range r.Results {
			if res.Source != v1alpha1.ReportSource {
				return fmt.Errorf("result source %q", res.Source)
			}
		}
		r.Source = v1alpha1.ReportSource
		return reportMatches(r, s, "DossierStore", s.Status.Compliance)
	})

	// Deleted by hand, the report is written again.
	r, err := getReport(ns, "dossierstore-dossiers")
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		again, err := getReport(ns, "dossierstore-dossiers")
		if err != nil {
			return err
		}
		if again.UID == r.UID {
			return fmt.Errorf("still the deleted report")
		}
		return reportMatches(again, getStore(t, store), "DossierStore", getStore(t, store).Status.Compliance)
	})
	// Edited by hand, it is put back.
	r, _ = getReport(ns, "dossierstore-dossiers")
	r.Results[0].Result = "pass"
	r.Results[0].Description = "all fine"
	r.Summary = openreportsv1alpha1.ReportSummary{Pass: len(r.Results)}
	if err := k8s.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		again, err := getReport(ns, "dossierstore-dossiers")
		if err != nil {
			return err
		}
		return reportMatches(again, getStore(t, store), "DossierStore", getStore(t, store).Status.Compliance)
	})
}

func fromUnstructured(u *unstructured.Unstructured, r *openreportsv1alpha1.Report) error {
	data, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(data, r)
}

func TestEveryKindHasItsReport(t *testing.T) {
	ns, store := readyStore(t)
	role := newRole(t, ns, "jeugdverpleegkundige")
	agreement := newAgreement(t, ns, "regenboog", nil)
	policy := newPolicy(t, ns, "bewaartermijn", nil)
	request := newRequest(t, ns, "inzage-2026-0001", fakeClock.Now().Add(-24*time.Hour))
	cases := []struct {
		kind, report string
		obj          client.Object
		controls     func() []v1alpha1.ComplianceControl
	}{
		{"DossierStore", "dossierstore-dossiers", store, func() []v1alpha1.ComplianceControl { return store.Status.Compliance }},
		{"AccessRole", "accessrole-jeugdverpleegkundige", role, func() []v1alpha1.ComplianceControl { return role.Status.Compliance }},
		{"SharingAgreement", "sharingagreement-regenboog", agreement, func() []v1alpha1.ComplianceControl { return agreement.Status.Compliance }},
		{"RetentionPolicy", "retentionpolicy-bewaartermijn", policy, func() []v1alpha1.ComplianceControl { return policy.Status.Compliance }},
		{"DataSubjectRequest", "datasubjectrequest-inzage-2026-0001", request, func() []v1alpha1.ComplianceControl { return request.Status.Compliance }},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			eventually(t, timeout, func() error {
				if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(c.obj), c.obj); err != nil {
					return err
				}
				r, err := getReport(ns, c.report)
				if err != nil {
					return err
				}
				if r.Labels[v1alpha1.LabelStore] != store.Name {
					return fmt.Errorf("labels %v; want the store %s", r.Labels, store.Name)
				}
				return reportMatches(r, c.obj, c.kind, c.controls())
			})
		})
	}
	// One store's reports are listed together by its label.
	list := &openreportsv1alpha1.ReportList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelStore: store.Name}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 5 {
		t.Errorf("%d reports labelled with the store; want 5", len(list.Items))
	}
}

func TestUnchangedReportsMakeNoWrites(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	eventually(t, timeout, func() error {
		_, err := getReport(ns, "dossierstore-dossiers")
		if err != nil {
			return err
		}
		_, err = getPolicyReport(ns, "dossierstore-dossiers")
		return err
	})
	time.Sleep(time.Second) // let the manager settle
	before, _ := getReport(ns, "dossierstore-dossiers")
	beforePolicy, _ := getPolicyReport(ns, "dossierstore-dossiers")

	writes := &atomic.Int64{}
	r := &controllers.DossierStoreReconciler{Client: countingClient{Client: mgrClient, n: writes}, Reader: k8s, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace,
		Reports: reports, Isolation: testIsolation}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d writes reconciling an unchanged store with its reports; want 0", n)
	}
	after, _ := getReport(ns, "dossierstore-dossiers")
	afterPolicy, _ := getPolicyReport(ns, "dossierstore-dossiers")
	if after.ResourceVersion != before.ResourceVersion || afterPolicy.GetResourceVersion() != beforePolicy.GetResourceVersion() {
		t.Errorf("report resource versions moved: Report %s -> %s, PolicyReport %s -> %s",
			before.ResourceVersion, after.ResourceVersion, beforePolicy.GetResourceVersion(), afterPolicy.GetResourceVersion())
	}
}

// A request's Report follows its status, and an unchanged request makes no
// write, of its status or of its Report.
func TestRequestReportMakesNoWritesWhenUnchanged(t *testing.T) {
	ctx := context.Background()
	ns, _ := readyStore(t)
	request := newRequest(t, ns, "correctie-2026-0002", fakeClock.Now().Add(-time.Hour), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Type = v1alpha1.RequestRectification
	})
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(request), request); err != nil {
			return err
		}
		r, err := getReport(ns, "datasubjectrequest-correctie-2026-0002")
		if err != nil {
			return err
		}
		return reportMatches(r, request, "DataSubjectRequest", request.Status.Compliance)
	})
	time.Sleep(time.Second) // let the manager settle
	before, _ := getReport(ns, "datasubjectrequest-correctie-2026-0002")
	writes := &atomic.Int64{}
	r := &controllers.DataSubjectRequestReconciler{Client: countingClient{Client: mgrClient, n: writes}, Recorder: noEvents{}, Clock: fakeClock, Reports: reports}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(request)}); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d writes reconciling an unchanged request with its reports; want 0", n)
	}
	if after, _ := getReport(ns, "datasubjectrequest-correctie-2026-0002"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the request's Report moved: %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	if strings.Contains(fmt.Sprint(before.Results), pseudonymA) {
		t.Error("the request's Report holds the dossier's pseudonym")
	}
}
