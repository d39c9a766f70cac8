package bench

import (
	"testing"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestInStep(t *testing.T) {
	rows := []v1alpha1.ComplianceControl{
		{Control: "EncryptionAtRest", Result: v1alpha1.ResultPass, Message: "encrypted"},
		{Control: "RetentionEnforced", Result: v1alpha1.ResultUnknown, Message: "awaiting"},
	}
	same := []openreportsv1alpha1.ReportResult{
		{Policy: "EncryptionAtRest", Result: "pass", Description: "encrypted"},
		{Policy: "RetentionEnforced", Result: "skip", Description: "awaiting"},
	}
	for _, tc := range []struct {
		name    string
		rows    []v1alpha1.ComplianceControl
		results []openreportsv1alpha1.ReportResult
		want    bool
	}{
		{"same, an Unknown row is any result", rows, same, true},
		{"no Report", rows, nil, false},
		{"no rows yet", nil, nil, false},
		{"a row fewer", rows, same[:1], false},
		{"another result", rows, []openreportsv1alpha1.ReportResult{{Policy: "EncryptionAtRest", Result: "fail", Description: "encrypted"}, same[1]}, false},
		{"another message", rows, []openreportsv1alpha1.ReportResult{{Policy: "EncryptionAtRest", Result: "pass", Description: "old"}, same[1]}, false},
		{"another order", rows, []openreportsv1alpha1.ReportResult{same[1], same[0]}, false},
	} {
		if got := inStep(tc.rows, tc.results); got != tc.want {
			t.Errorf("%s: inStep = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStoreSettled(t *testing.T) {
	settled := v1alpha1.DossierStoreStatus{Agreements: &v1alpha1.AgreementSummary{InForce: 1}}
	settled.Compliance = []v1alpha1.ComplianceControl{
		{Control: "AccessControlDefined", Result: v1alpha1.ResultPass},
		{Control: "RetentionEnforced", Reason: "AwaitingFirstRun"},
	}
	noAgreement := *settled.DeepCopy()
	noAgreement.Agreements = nil
	noRole := *settled.DeepCopy()
	noRole.Compliance[0].Result = v1alpha1.ResultFail
	for _, tc := range []struct {
		name   string
		status v1alpha1.DossierStoreStatus
		want   bool
	}{
		{"settled", settled, true},
		{"agreement not in force yet", noAgreement, false},
		{"role not rendered yet", noRole, false},
		{"no status", v1alpha1.DossierStoreStatus{}, false},
	} {
		if got := storeSettled(&v1alpha1.DossierStore{Status: tc.status}); got != tc.want {
			t.Errorf("%s: storeSettled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestConvergenceTracksEachObject feeds a role and its Report through the
// tracker's informer handler, in the orders an informer can deliver them.
func TestConvergenceTracksEachObject(t *testing.T) {
	rows := []v1alpha1.ComplianceControl{{Control: "RoleScoped", Result: v1alpha1.ResultPass, Message: "ok"}}
	ready := []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
	role := func(conds []metav1.Condition) *v1alpha1.AccessRole {
		r := &v1alpha1.AccessRole{ObjectMeta: metav1.ObjectMeta{UID: "role-1"}}
		r.Status.Conditions, r.Status.Compliance = conds, rows
		return r
	}
	report := func(result openreportsv1alpha1.Result) *openreportsv1alpha1.Report {
		return &openreportsv1alpha1.Report{Scope: &corev1.ObjectReference{UID: "role-1"},
			Results: []openreportsv1alpha1.ReportResult{{Policy: "RoleScoped", Result: result, Description: "ok"}}}
	}
	c := newConvergence(1)
	h := c.handler()
	check := func(step string, wantReady, wantInStep, wantDone int) {
		t.Helper()
		r, _, s, d := c.counts()
		if r != wantReady || s != wantInStep || d != wantDone {
			t.Errorf("%s: ready %d, in step %d, done %d; want %d, %d, %d", step, r, s, d, wantReady, wantInStep, wantDone)
		}
	}
	h.OnAdd(report("pass"), false) // the Report before its resource
	check("report only", 0, 0, 0)
	h.OnAdd(role(nil), false)
	check("role without Ready", 0, 1, 0)
	select {
	case <-c.allDone():
		t.Fatal("all done before the role is Ready")
	default:
	}
	h.OnUpdate(nil, role(ready))
	check("role Ready", 1, 1, 1)
	select {
	case <-c.allDone():
	default:
		t.Fatal("not all done with the one object converged")
	}
	h.OnUpdate(nil, report("fail"))
	check("Report out of step", 1, 0, 0)
	h.OnUpdate(nil, report("pass"))
	check("Report back in step", 1, 1, 1)
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Obj: report("pass")})
	check("Report gone", 1, 0, 0)
	h.OnDelete(role(ready))
	check("role gone", 0, 0, 0)
	if got := c.timeline(); got == "" {
		t.Error("no timeline of the role that converged")
	}
	if n := len(c.firstDone["AccessRole"]); n != 1 {
		t.Errorf("the role first converged %d times, want once", n)
	}
}

func TestSamples(t *testing.T) {
	text := `# HELP workqueue_queue_duration_seconds x
workqueue_queue_duration_seconds_sum{controller="a",name="a"} 3.5
workqueue_queue_duration_seconds_count{controller="a",name="a"} 7
workqueue_queue_duration_seconds_sum{controller="b",name="b"} 1
workqueue_queue_duration_seconds_count{controller="b",name="b"} 2
workqueue_adds_total{controller="a",name="a"} 9
other_metric 1
`
	earlier := parseSamples(`workqueue_queue_duration_seconds_sum{controller="a",name="a"} 0.5
workqueue_queue_duration_seconds_count{controller="a",name="a"} 1
`, "workqueue_")
	s := parseSamples(text, "workqueue_").since(earlier)
	if _, ok := s["other_metric"]; ok {
		t.Error("parsed a metric of another prefix")
	}
	rows := s.histogram("workqueue_queue_duration_seconds", nil, "name")
	if len(rows) != 2 || rows[0].key != "a" || rows[0].count != 6 || rows[0].sum != 3 || rows[0].mean() != 0.5 || rows[1].key != "b" {
		t.Errorf("histogram rows = %+v", rows)
	}
	if got := s.by("workqueue_adds_total", "name")["a"]; got != 9 {
		t.Errorf("adds of a = %v, want 9", got)
	}
	if rows := s.histogram("workqueue_queue_duration_seconds", func(k string) bool { return k == "a" }, "name"); len(rows) != 1 || rows[0].key != "b" {
		t.Errorf("histogram rows with a skipped = %+v", rows)
	}
}
