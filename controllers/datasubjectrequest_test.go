package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

const (
	pseudonymA = "3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f"
	pseudonymB = "b9d88858ee62d645d9e45651cc19a782f9314866fc6b8c190a1ec31ec2284149"
)

func newRequest(t *testing.T, ns, name string, received time.Time, mutate ...func(*v1alpha1.DataSubjectRequest)) *v1alpha1.DataSubjectRequest {
	t.Helper()
	r := &v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: "dossiers"}, Type: v1alpha1.RequestAccess, Dossier: pseudonymA,
			ReceivedAt: metav1.NewTime(received.Truncate(time.Second)), Requester: v1alpha1.Requester{Relation: v1alpha1.RelationSelf},
			Subject: v1alpha1.DataSubject{AgeBand: v1alpha1.AgeAdult}, Handler: "privacy-officer",
		},
	}
	for _, m := range mutate {
		m(r)
	}
	if err := k8s.Create(context.Background(), r); err != nil {
		t.Fatalf("create request %s: %v", name, err)
	}
	return r
}

func requestCondition(r *v1alpha1.DataSubjectRequest, typ string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		return conditionIs(r, func() []metav1.Condition { return r.Status.Conditions }, typ, status, reason)
	}
}

// TestDataSubjectRequestDeadlineAndControl: an open request is tracked with
// its due date and the store's control passes; an overdue one fails the
// store's DataSubjectRights control and gets a Warning Event naming no
// dossier; deciding it (late) makes the control pass again.
func TestDataSubjectRequestDeadlineAndControl(t *testing.T) {
	ns := newNamespace(t)
	class := encryptedClass(t)
	store := newStore(t, ns, class.Name, func(s *v1alpha1.DossierStore) {
		s.Spec.DataSubjectRights = &v1alpha1.DataSubjectRightsSpec{ResponsePeriod: "P1M"}
	})
	eventually(t, 20*time.Second, storeControl(store, v1alpha1.ControlDataSubjectRights, v1alpha1.ResultPass, v1alpha1.ReasonNoOpenRequests))

	now := time.Now()
	open := newRequest(t, ns, "inzage-open", now.Add(-24*time.Hour))
	eventually(t, 20*time.Second, requestCondition(open, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRequestTracked))
	want, err := dsr.ComputeDeadline(open.Spec.ReceivedAt.Time, "P1M", 0)
	if err != nil {
		t.Fatal(err)
	}
	if open.Status.DueDate != want.Date.String() || open.Status.State != v1alpha1.StateOpen || open.Status.ResponsePeriod != "P1M" {
		t.Errorf("open request: due %q state %q period %q, want %s Open P1M", open.Status.DueDate, open.Status.State, open.Status.ResponsePeriod, want.Date)
	}
	eventually(t, 20*time.Second, storeControl(store, v1alpha1.ControlDataSubjectRights, v1alpha1.ResultPass, v1alpha1.ReasonRequestsWithinDeadline))

	late := newRequest(t, ns, "inzage-late", now.AddDate(0, -2, 0), func(r *v1alpha1.DataSubjectRequest) { r.Spec.Dossier = pseudonymB })
	eventually(t, 20*time.Second, requestCondition(late, v1alpha1.ConditionDeadlineMet, metav1.ConditionFalse, v1alpha1.ReasonDeadlinePassed))
	if late.Status.State != v1alpha1.StateOverdue {
		t.Errorf("late request state %q, want Overdue", late.Status.State)
	}
	eventually(t, 20*time.Second, storeControl(store, v1alpha1.ControlDataSubjectRights, v1alpha1.ResultFail, v1alpha1.ReasonRequestsOverdue))
	eventually(t, 20*time.Second, func() error {
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == late.Name && e.Reason == v1alpha1.ReasonRequestOverdue && e.Type == "Warning" {
				if strings.Contains(e.Note, pseudonymB) {
					t.Errorf("the event names the dossier: %q", e.Note)
				}
				return nil
			}
		}
		return fmt.Errorf("no RequestOverdue event for %s among %d events", late.Name, len(events.Items))
	})

	// Decided, late: the store passes again, the request records it was late.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(late), late); err != nil {
			return err
		}
		late.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(now.Truncate(time.Second))}
		return k8s.Update(context.Background(), late)
	}); err != nil {
		t.Fatalf("record the decision: %v", err)
	}
	eventually(t, 20*time.Second, requestCondition(late, v1alpha1.ConditionDeadlineMet, metav1.ConditionFalse, v1alpha1.ReasonDecidedLate))
	eventually(t, 20*time.Second, storeControl(store, v1alpha1.ControlDataSubjectRights, v1alpha1.ResultPass, v1alpha1.ReasonRequestsWithinDeadline))
}

// TestDataSubjectRequestRequeuesAtDeadline: the reconcile asks to look
// again exactly when the deadline passes (no polling), and at that moment
// the request is overdue. The request is received in the future of the
// manager's clock, so that the manager sees it Open as the test's clock
// does until the test moves to the deadline.
func TestDataSubjectRequestRequeuesAtDeadline(t *testing.T) {
	ns := newNamespace(t)
	received := time.Now().AddDate(0, 0, 40).Truncate(time.Second)
	req := newRequest(t, ns, "inzage-1", received)
	dl, err := dsr.ComputeDeadline(received, "P4W", 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, requestCondition(req, v1alpha1.ConditionDeadlineMet, metav1.ConditionTrue, v1alpha1.ReasonWithinDeadline))
	clk := clocktesting.NewFakePassiveClock(dl.At.Add(-90 * time.Minute))
	// The running manager reconciles the same request with the real clock,
	// so a write of this reconciler may meet a newer version (a stale read,
	// retried) and a later read may show the manager's status: the test
	// retries stale reads and checks the status this reconciler wrote.
	written := &statusRecorder{Client: k8s}
	r := &controllers.DataSubjectRequestReconciler{Client: written, Recorder: &noEvents{}, Clock: clk}
	key := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(req)}
	res := reconcileFresh(t, r, key)
	if res.RequeueAfter != 90*time.Minute {
		t.Errorf("requeue after %s, want 1h30m0s: the moment the deadline passes", res.RequeueAfter)
	}
	clk.SetTime(dl.At)
	res = reconcileFresh(t, r, key)
	got, ok := written.last.(*v1alpha1.DataSubjectRequest)
	if !ok {
		t.Fatal("at the deadline the reconciler wrote no status")
	}
	if got.Status.State != v1alpha1.StateOverdue || res.RequeueAfter != 0 {
		t.Errorf("at the deadline: state %q requeue %s, want Overdue and no requeue", got.Status.State, res.RequeueAfter)
	}
}

// staleReadRetry is the controllers' requeue after a status write that met
// a newer version of the object (controllers.staleRetry).
const staleReadRetry = 200 * time.Millisecond

// reconcileFresh runs r until its status write did not meet a newer
// version of the object, which the running manager may have written.
func reconcileFresh(t *testing.T, r interface {
	Reconcile(context.Context, ctrl.Request) (ctrl.Result, error)
}, key ctrl.Request) ctrl.Result {
	t.Helper()
	for range 20 {
		res, err := r.Reconcile(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if res.RequeueAfter != staleReadRetry {
			return res
		}
	}
	t.Fatal("every status write met a newer version of the object")
	return ctrl.Result{}
}

// statusRecorder is a client that keeps a copy of the last object whose
// status it patched.
type statusRecorder struct {
	client.Client
	last client.Object
}

func (c *statusRecorder) Status() client.SubResourceWriter {
	return recordingStatusWriter{SubResourceWriter: c.Client.Status(), recorder: c}
}

type recordingStatusWriter struct {
	client.SubResourceWriter
	recorder *statusRecorder
}

func (w recordingStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	if err == nil {
		w.recorder.last = obj.DeepCopyObject().(client.Object)
	}
	return err
}

func (w recordingStatusWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	err := w.SubResourceWriter.Update(ctx, obj, opts...)
	if err == nil {
		w.recorder.last = obj.DeepCopyObject().(client.Object)
	}
	return err
}

// TestProxyWatchesRequestsWithItsOwnAccount: with the workload's
// ServiceAccount and only the Role the store provisions, the audit proxy's
// watch sees a granted restriction within 10 s of the decision and its end
// as quickly; it reports not synced until the first list. The store also
// admits the workload to the API server's endpoints, and nowhere else.
func TestProxyWatchesRequestsWithItsOwnAccount(t *testing.T) {
	ns := newNamespace(t)
	class := encryptedClass(t)
	store := newStore(t, ns, class.Name)
	eventually(t, 20*time.Second, storeControl(store, v1alpha1.ControlDataSubjectRights, v1alpha1.ResultPass, v1alpha1.ReasonNoOpenRequests))
	for _, c := range store.Status.Compliance {
		if c.Control == v1alpha1.ControlDataSubjectRights && (!slices.Contains(c.Evidence, "Role/dossiers-workload") || !slices.Contains(c.Evidence, "NetworkPolicy/dossiers-isolation")) {
			t.Errorf("DataSubjectRights evidence %q lacks the proxy's Role or its way to the API server", c.Evidence)
		}
	}
	pol := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "dossiers-isolation"}, pol); err != nil {
		t.Fatalf("the isolation NetworkPolicy: %v", err)
	}
	apiServerRules := 0
	for _, rule := range pol.Spec.Egress {
		if len(rule.To) == 0 || rule.To[0].IPBlock == nil {
			continue
		}
		apiServerRules++
		if len(rule.To) != 1 || !strings.HasSuffix(rule.To[0].IPBlock.CIDR, "/32") && !strings.HasSuffix(rule.To[0].IPBlock.CIDR, "/128") || len(rule.Ports) != 1 {
			t.Errorf("egress rule %+v: want one API server address and port", rule)
		}
	}
	if apiServerRules == 0 {
		t.Errorf("isolation policy %+v: no egress rule to the API server", pol.Spec)
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":dossier-app",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	watch, err := auditproxy.NewKubeRequests(cfg, ns, store.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Effects(); err == nil {
		t.Error("Effects before the watch started: no error, want not synced")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watch.Run(ctx)
	eventually(t, 10*time.Second, func() error { _, err := watch.Effects(); return err })

	route := &accesspolicy.Route{Name: "read", Categories: []v1alpha1.DataCategory{"identity"}}
	decided := time.Now()
	req := newRequest(t, ns, "afscherming-1", decided.Add(-time.Hour), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Type = v1alpha1.RequestRestriction
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(decided.Add(-time.Second).Truncate(time.Second))}
	})
	refused := func(want auditproxy.Refusal) func() error {
		return func() error {
			set, err := watch.Effects()
			if err != nil {
				return err
			}
			if got, _ := set.Check(pseudonymA, auditproxy.TargetOf(&accesspolicy.Document{}, route, []string{"basis"}), time.Now()); got != want {
				return fmt.Errorf("Check = %d, want %d", got, want)
			}
			return nil
		}
	}
	eventually(t, 10*time.Second, refused(auditproxy.RefusedRestricted))
	t.Logf("restriction seen by the proxy's watch %s after the decision was recorded", time.Since(decided).Round(time.Millisecond))
	if set, _ := watch.Effects(); func() auditproxy.Refusal {
		r, _ := set.Check(pseudonymB, auditproxy.TargetOf(&accesspolicy.Document{}, route, nil), time.Now())
		return r
	}() != auditproxy.NotRefused {
		t.Error("another dossier is refused")
	}

	ended := &metav1.Time{Time: time.Now().Truncate(time.Second)}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(req), req); err != nil {
			return err
		}
		req.Spec.EndedAt = ended
		return k8s.Update(context.Background(), req)
	}); err != nil {
		t.Fatalf("end the restriction: %v", err)
	}
	eventually(t, 10*time.Second, refused(auditproxy.NotRefused))
}

// TestObjectionByActivityStatus: an objection to a processing activity
// shows the routes it reaches; ObjectionScope is False while the activity
// does not exist and while a reached route cannot be filtered, and the
// store's BulkRoutesFilterable names that route; once the activity exists
// and the route declares records, both are True.
func TestObjectionByActivityStatus(t *testing.T) {
	ns := newNamespace(t)
	class := encryptedClass(t)
	identity := []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}
	survey := []v1alpha1.ActivityName{"onderzoek"}
	store := newStore(t, ns, class.Name, func(s *v1alpha1.DossierStore) {
		s.Spec.Audit = &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{
			{Name: "read", Method: "GET", Path: "/api/dossiers/{dossier}", Categories: identity, Action: v1alpha1.ActionRead},
			{Name: "survey-addresses", Method: "GET", Path: "/api/survey/addresses", Categories: identity, Action: v1alpha1.ActionExport, ProcessingActivities: survey,
				Records: &v1alpha1.RecordsSpec{Format: v1alpha1.RecordsJSON, Items: "/addresses", DossierField: "/dossier"}},
			{Name: "survey-count", Method: "GET", Path: "/api/survey/count", Categories: identity, Action: v1alpha1.ActionRead, ProcessingActivities: survey},
		}}
	})
	decided := time.Now().Add(-time.Hour)
	req := newRequest(t, ns, "verzet-1", decided.Add(-time.Hour), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Type = v1alpha1.RequestObjection
		r.Spec.Objection = &v1alpha1.ObjectionSpec{Purpose: "cliëntervaringsonderzoek", Activities: survey}
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(decided.Truncate(time.Second))}
	})
	eventually(t, 20*time.Second, requestCondition(req, v1alpha1.ConditionObjectionScope, metav1.ConditionFalse, v1alpha1.ReasonActivityNotFound))
	if o := req.Status.Objection; o == nil || !slices.Equal(o.Routes, []string{"survey-addresses", "survey-count"}) || !slices.Equal(o.Activities, []string{"onderzoek"}) ||
		!slices.Equal(o.FilteredRoutes, []string{"survey-addresses"}) || !slices.Equal(o.UnfilterableRoutes, []string{"survey-count"}) {
		t.Errorf("status.objection %+v; want routes survey-addresses and survey-count, survey-count unfilterable", req.Status.Objection)
	}
	if c := meta.FindStatusCondition(req.Status.Conditions, v1alpha1.ConditionObjectionScope); !strings.Contains(c.Message, "ProcessingActivity onderzoek does not exist") ||
		!strings.Contains(c.Message, "route survey-count has no {dossier} and no records") || strings.Contains(c.Message, pseudonymA) {
		t.Errorf("ObjectionScope message %q", c.Message)
	}
	storeCond := func(status metav1.ConditionStatus, reason string) func() error {
		return func() error {
			return conditionIs(store, func() []metav1.Condition { return store.Status.Conditions }, v1alpha1.ConditionBulkRoutesFilterable, status, reason)
		}
	}
	eventually(t, 20*time.Second, storeCond(metav1.ConditionFalse, v1alpha1.ReasonRouteUnfilterable))
	if c := meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionBulkRoutesFilterable); !strings.Contains(c.Message, "route survey-count,") {
		t.Errorf("BulkRoutesFilterable message %q does not name survey-count", c.Message)
	}

	newActivity(t, ns, "onderzoek", nil)
	eventually(t, 20*time.Second, requestCondition(req, v1alpha1.ConditionObjectionScope, metav1.ConditionFalse, v1alpha1.ReasonRouteUnfilterable))

	updateRetrying(t, store, func(s *v1alpha1.DossierStore) {
		s.Spec.Audit.Routes[2].Records = &v1alpha1.RecordsSpec{Format: v1alpha1.RecordsJSON, Items: "/counts", DossierField: "/dossier"}
	})
	eventually(t, 20*time.Second, requestCondition(req, v1alpha1.ConditionObjectionScope, metav1.ConditionTrue, v1alpha1.ReasonScopeResolved))
	eventually(t, 20*time.Second, storeCond(metav1.ConditionTrue, v1alpha1.ReasonBulkRoutesFiltered))
	if o := req.Status.Objection; o == nil || len(o.UnfilterableRoutes) != 0 || !slices.Equal(o.FilteredRoutes, []string{"survey-addresses", "survey-count"}) {
		t.Errorf("status.objection %+v; want both survey routes filtered", req.Status.Objection)
	}
}
