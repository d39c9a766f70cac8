package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/dsr"
	"github.com/dossierguard/dossierguard/internal/metrics"
)

// DataSubjectRequestReconciler keeps a request's deadline, state and
// conditions, and emits an Event when it becomes overdue or its effect
// starts or ends. It looks again exactly when time alone changes the
// request (the deadline, the start or end of an effect); it never polls.
type DataSubjectRequestReconciler struct {
	client.Client
	// Reader reads the sweeper CronJob an erasure Job is made from from
	// the API server: the cache holds CronJobs without their job template
	// (trimmedChild). Without one, the Client is read.
	Reader   client.Reader
	Recorder recorder.EventRecorder
	Clock    clock.PassiveClock
	// Reports are the compliance reports kept for each request (its
	// ResponseDeadline row), as for the other kinds.
	Reports ReportKinds
}

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=datasubjectrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=datasubjectrequests/status,verbs=get;update;patch

// Reconcile computes one request's status from its spec, its store's
// response period and the clock.
func (r *DataSubjectRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	request := &v1alpha1.DataSubjectRequest{}
	if err := r.Get(ctx, req.NamespacedName, request); err != nil {
		return ctrl.Result{}, forgetIfGone(metrics.KindDataSubjectRequest, req, err)
	}
	before := request.DeepCopy()
	now := r.Clock.Now()

	store, view, err := readStore(ctx, r.Client, request.Namespace, request.Spec.StoreRef.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	facts := requestFacts{storeFound: view.Found, period: dsr.ResponsePeriod(store), maxExtension: dsr.MaxRetentionExtension(store)}
	if facts.objection, err = r.objectionFacts(ctx, request, store); err != nil {
		return ctrl.Result{}, err
	}
	var dl dsr.Deadline
	if dl, facts.periodErr = dsr.RequestDeadline(request, facts.period); facts.periodErr == nil {
		facts.assessment = dsr.Assess(request, dl, now, dsr.MaxRetentionExtension(store))
	}

	setRequestStatus(request, facts)
	metrics.RecordDataSubjectRequest(request)
	written, statusErr := writeStatus(ctx, r.Client, request, before.Status, request.Status)
	if written {
		r.recordRequestTransitions(before, request)
	}
	var reportErr error
	if statusErr == nil {
		_, reportErr = syncReports(ctx, r.Client, r.Reports,
			reportSubject(metrics.KindDataSubjectRequest, request, request.Spec.StoreRef.Name, &request.Status.CommonStatus))
	}
	if err := r.startErasures(ctx, request, now); err != nil {
		reportErr = errors.Join(reportErr, err)
	}
	return finish(requeueFor(facts.assessment.Next, now), statusErr, reportErr)
}

// objectionFacts reads what an Objection request reaches among its store's
// routes (none when the store does not exist) and which of its activities
// do not exist.
func (r *DataSubjectRequestReconciler) objectionFacts(ctx context.Context, req *v1alpha1.DataSubjectRequest, store *v1alpha1.DossierStore) (objectionFacts, error) {
	o := req.Spec.Objection
	if req.Spec.Type != v1alpha1.RequestObjection || o == nil {
		return objectionFacts{}, nil
	}
	var routes []dsr.StoreRoute
	if store != nil {
		routes = dsr.StoreRoutes(store)
	}
	f := objectionFacts{reach: dsr.ReachOfObjection(o, routes)}
	if len(o.Activities) == 0 {
		return f, nil
	}
	var list v1alpha1.ProcessingActivityList
	if err := r.List(ctx, &list, client.InNamespace(req.Namespace)); err != nil {
		return f, fmt.Errorf("list processing activities: %w", err)
	}
	for _, a := range o.Activities {
		if !slices.ContainsFunc(list.Items, func(p v1alpha1.ProcessingActivity) bool { return p.Name == string(a) }) {
			f.missingActivities = append(f.missingActivities, string(a))
		}
	}
	slices.Sort(f.missingActivities)
	return f, nil
}

// SetupWithManager registers the reconciler; the storeRef index is
// registered by SetupAll.
func (r *DataSubjectRequestReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ownReports(ctrl.NewControllerManagedBy(mgr), r.Reports).
		For(&v1alpha1.DataSubjectRequest{}, builder.WithPredicates(specMetadataOrDeletion)).
		// A store's response period sets the deadline; its existence Ready.
		Watches(&v1alpha1.DossierStore{}, handler.EnqueueRequestsFromMapFunc(referrers(r.Client, &v1alpha1.DataSubjectRequestList{})),
			builder.WithPredicates(specMetadataOrDeletion)).
		// An objection's ObjectionScope says whether its activities exist.
		Watches(&v1alpha1.ProcessingActivity{}, handler.EnqueueRequestsFromMapFunc(inNamespace(r.Client, &v1alpha1.DataSubjectRequestList{})),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return true },
				UpdateFunc: func(event.UpdateEvent) bool { return false },
				DeleteFunc: func(event.DeleteEvent) bool { return true },
			})).
		// A granted erasure starts its Job once the policy's sweeper
		// CronJob exists.
		Watches(&batchv1.CronJob{}, handler.EnqueueRequestsFromMapFunc(cronJobToRequests(r.Client)),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return true },
				UpdateFunc: func(event.UpdateEvent) bool { return false },
				DeleteFunc: func(event.DeleteEvent) bool { return false },
			})).
		Named("datasubjectrequest").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// summariseRequests assesses the store's requests for its DataSubjectRights
// control, from their specs and the store's period (not from their status,
// so that the store does not wait for the requests' reconciles), and the
// next moment one of them changes.
// It also returns the store's routes without {dossier} or records that an
// effect in force reaches (the routes the proxy refuses whole).
func (r *DossierStoreReconciler) summariseRequests(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) (v1alpha1.ComplianceControl, time.Time, []string, error) {
	list := &v1alpha1.DataSubjectRequestList{}
	if err := r.List(ctx, list, client.InNamespace(store.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
		return compliance.RequestsNotListedControl(), time.Time{}, nil, err
	}
	unfilterable := dsr.UnfilterableRoutes(dsr.StoreRoutes(store), list.Items, func(req *v1alpha1.DataSubjectRequest) bool {
		active, _ := dsr.Effective(req, now)
		return active
	})
	period := dsr.ResponsePeriod(store)
	outcomes := make([]compliance.RequestOutcome, 0, len(list.Items))
	for i := range list.Items {
		dl, err := dsr.RequestDeadline(&list.Items[i], period)
		if err != nil {
			// Only a period the API's rules would refuse gets here.
			return compliance.RequestsNotListedControl(), time.Time{}, unfilterable, nil
		}
		outcomes = append(outcomes, compliance.RequestOutcome{Name: list.Items[i].Name, Assessment: dsr.Assess(&list.Items[i], dl, now, dsr.MaxRetentionExtension(store))})
	}
	return compliance.DataSubjectRightsControl(outcomes), compliance.NextRequestChange(outcomes), unfilterable, nil
}
