package controllers

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
)

const statusPseudonym = "3f771686cc88a4b4235dec14b0b3689bb64ee8ceb4ce1c32f243b62b2a3dbb7f"

func statusRequest() *v1alpha1.DataSubjectRequest {
	return &v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "inzage-1", Namespace: "cjg", Generation: 2},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: "cjg-dossiers"}, Type: v1alpha1.RequestAccess, Dossier: statusPseudonym,
			ReceivedAt: metav1.NewTime(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
		},
	}
}

// TestSetRequestStatus: due date, state and conditions from the facts;
// never the pseudonym.
func TestSetRequestStatus(t *testing.T) {
	dl, err := dsr.ComputeDeadline(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), "P4W", 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                         string
		facts                        requestFacts
		wantState                    v1alpha1.RequestState
		wantReady, wantDeadline      string
		wantCompliant, wantReadyText string
	}{
		{"open", requestFacts{storeFound: true, period: "P4W", assessment: dsr.Assessment{State: v1alpha1.StateOpen, Deadline: dl}},
			v1alpha1.StateOpen, "True/RequestTracked", "True/WithinDeadline", "True", "Access request, due 2026-11-30 (Europe/Amsterdam, P4W from receipt); Open"},
		{"overdue", requestFacts{storeFound: true, period: "P4W", assessment: dsr.Assessment{State: v1alpha1.StateOverdue, Late: true, Deadline: dl}},
			v1alpha1.StateOverdue, "True/RequestTracked", "False/DeadlinePassed", "False", "due 2026-11-30"},
		{"store missing", requestFacts{period: "P4W", assessment: dsr.Assessment{State: v1alpha1.StateOpen, Deadline: dl}},
			v1alpha1.StateOpen, "False/StoreNotFound", "True/WithinDeadline", "True", `DossierStore "cjg-dossiers" does not exist`},
		{"unusable period", requestFacts{storeFound: true, period: "P3M", periodErr: errors.New("must be at most one month")},
			"", "False/InvalidResponsePeriod", "False/InvalidResponsePeriod", "False", "no deadline can be computed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := statusRequest()
			setRequestStatus(req, tc.facts)
			st := req.Status
			if st.State != tc.wantState || st.ObservedGeneration != 2 {
				t.Errorf("state %q generation %d, want %q and 2", st.State, st.ObservedGeneration, tc.wantState)
			}
			if tc.wantState != "" && (st.DueDate != "2026-11-30" || st.DueAt == nil || !st.DueAt.Time.Equal(dl.At)) {
				t.Errorf("due %q at %v, want 2026-11-30 at %s", st.DueDate, st.DueAt, dl.At)
			}
			cond := func(typ string) string {
				for _, c := range st.Conditions {
					if c.Type == typ {
						return string(c.Status) + "/" + c.Reason
					}
				}
				return "missing"
			}
			if got := cond("Ready"); got != tc.wantReady {
				t.Errorf("Ready %s, want %s", got, tc.wantReady)
			}
			if got := cond("DeadlineMet"); got != tc.wantDeadline {
				t.Errorf("DeadlineMet %s, want %s", got, tc.wantDeadline)
			}
			if got := cond("Compliant"); !strings.HasPrefix(got, tc.wantCompliant+"/") {
				t.Errorf("Compliant %s, want %s", got, tc.wantCompliant)
			}
			for _, c := range st.Conditions {
				if c.Type == "Ready" && !strings.Contains(c.Message, tc.wantReadyText) {
					t.Errorf("Ready message %q, want it to contain %q", c.Message, tc.wantReadyText)
				}
				if strings.Contains(c.Message, statusPseudonym) {
					t.Errorf("condition %s holds the pseudonym", c.Type)
				}
			}
		})
	}
}

// TestRequestTransition: an Event when a request becomes overdue and when
// its effect starts or ends; none otherwise.
func TestRequestTransition(t *testing.T) {
	for _, tc := range []struct {
		typ           v1alpha1.RequestType
		before, after v1alpha1.RequestState
		want          string
	}{
		{"", "", v1alpha1.StateOpen, ""},
		{"", v1alpha1.StateOpen, v1alpha1.StateOpen, ""},
		{"", v1alpha1.StateOpen, v1alpha1.StateOverdue, "Warning RequestOverdue: the request is past its deadline of 2026-11-30 (Europe/Amsterdam) and not decided"},
		{"", "", v1alpha1.StateOverdue, "Warning RequestOverdue: the request is past its deadline of 2026-11-30 (Europe/Amsterdam) and not decided"},
		{"", v1alpha1.StateOverdue, v1alpha1.StateDecided, ""},
		{"", v1alpha1.StateOpen, v1alpha1.StateInEffect, "Normal EffectStarted: the decision is in effect: the audit proxy enforces it for the dossier"},
		{"", v1alpha1.StateInEffect, v1alpha1.StateEnded, "Normal EffectEnded: the request's effect has ended: the audit proxy no longer enforces it"},
		{"", v1alpha1.StateInEffect, v1alpha1.StateDecided, "Normal EffectEnded: the request's effect has ended: the audit proxy no longer enforces it"},
		{"", v1alpha1.StateDecided, v1alpha1.StateEnded, ""},
		{v1alpha1.RequestRetentionExtension, v1alpha1.StateDecided, v1alpha1.StateInEffect, "Normal EffectStarted: the decision is in effect: the retention sweeper keeps the dossier's records until its end date"},
		{v1alpha1.RequestRetentionExtension, v1alpha1.StateInEffect, v1alpha1.StateEnded, "Normal EffectEnded: the request's effect has ended: the retention sweeper no longer keeps the dossier's records beyond their retention period"},
	} {
		if tc.typ == "" {
			tc.typ = v1alpha1.RequestRestriction
		}
		got := ""
		if ok, typ, reason, msg := requestTransition(tc.typ, tc.before, tc.after, "2026-11-30"); ok {
			got = typ + " " + reason + ": " + msg
		}
		if got != tc.want {
			t.Errorf("%q -> %q: %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}

// extensionRequest is a RetentionExtension request received on 2 November
// 2026, decided (when outcome is set) on 10 November, until the day.
func extensionRequest(until string, outcome v1alpha1.DecisionOutcome) *v1alpha1.DataSubjectRequest {
	req := statusRequest()
	req.Spec.Type = v1alpha1.RequestRetentionExtension
	req.Spec.RetentionExtension = &v1alpha1.RetentionExtensionSpec{Until: until, Reference: "brief 2026-118"}
	if outcome != "" {
		req.Spec.Decision = &v1alpha1.RequestDecision{Outcome: outcome, DecidedAt: metav1.NewTime(time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC))}
	}
	return req
}

// TestSetRetentionDecisions: a RetentionExtension request's extension in
// effect, its ExtensionWithinCap condition and Ready; a dated erasure's
// start.
func TestSetRetentionDecisions(t *testing.T) {
	cases := []struct {
		name      string
		req       *v1alpha1.DataSubjectRequest
		cap       v1alpha1.Period
		wantOK    bool
		wantCond  string // ExtensionWithinCap status/reason, or "missing"
		wantKept  string // status.retentionExtension.keptUntil, or ""
		wantEnds  string
		wantText  string // in the condition's message
		wantErase string
	}{
		{"granted within the cap", extensionRequest("2030-12-31", v1alpha1.DecisionGranted), "P5Y", true,
			"True/EndDateWithinCap", "2030-12-31", "2030-12-31T23:00:00Z", "spec.retentionExtension.until 2030-12-31 is within the store's spec.dataSubjectRights.maxRetentionExtension P5Y from the decision (at most 2031-11-10)", ""},
		{"on the last day the cap allows", extensionRequest("2031-11-10", v1alpha1.DecisionGranted), "P5Y", true,
			"True/EndDateWithinCap", "2031-11-10", "2031-11-10T23:00:00Z", "at most 2031-11-10", ""},
		{"one day beyond the cap", extensionRequest("2031-11-11", v1alpha1.DecisionGranted), "P5Y", false,
			"False/EndDateBeyondCap", "2031-11-10", "2031-11-10T23:00:00Z", "spec.retentionExtension.until 2031-11-11 lies beyond the store's spec.dataSubjectRights.maxRetentionExtension P5Y from the decision (at most 2031-11-10)", ""},
		{"undecided: the cap runs from the receipt, nothing kept yet", extensionRequest("2027-01-31", ""), "P3M", true,
			"True/EndDateWithinCap", "", "", "from the receipt (until decided) (at most 2027-02-02)", ""},
		{"refused: nothing kept", extensionRequest("2030-01-01", v1alpha1.DecisionRefused), "P5Y", true,
			"True/EndDateWithinCap", "", "", "within", ""},
		{"unusable cap", extensionRequest("2030-01-01", v1alpha1.DecisionGranted), "P5X", false,
			"False/InvalidExtensionCap", "", "", "spec.dataSubjectRights.maxRetentionExtension of the store", ""},
		{"access: no extension", statusRequest(), "P5Y", true, "missing", "", "", "", ""},
	}
	dated := statusRequest()
	dated.Spec.Type = v1alpha1.RequestErasure
	dated.Spec.Erasure = &v1alpha1.ErasureSpec{NotBefore: "2027-01-15"}
	cases = append(cases, struct {
		name      string
		req       *v1alpha1.DataSubjectRequest
		cap       v1alpha1.Period
		wantOK    bool
		wantCond  string
		wantKept  string
		wantEnds  string
		wantText  string
		wantErase string
	}{"dated erasure", dated, "P5Y", true, "missing", "", "", "", "2027-01-14T23:00:00Z"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			ok := setRetentionDecisions(req, tc.cap)
			if ok != tc.wantOK {
				t.Errorf("ok %v, want %v", ok, tc.wantOK)
			}
			got, msg := "missing", ""
			for _, c := range req.Status.Conditions {
				if c.Type == v1alpha1.ConditionExtensionWithinCap {
					got, msg = string(c.Status)+"/"+c.Reason, c.Message
				}
				if strings.Contains(c.Message, statusPseudonym) {
					t.Errorf("condition %s holds the pseudonym", c.Type)
				}
			}
			if got != tc.wantCond || !strings.Contains(msg, tc.wantText) {
				t.Errorf("ExtensionWithinCap %s %q, want %s containing %q", got, msg, tc.wantCond, tc.wantText)
			}
			if !tc.wantOK {
				ready := ""
				for _, c := range req.Status.Conditions {
					if c.Type == v1alpha1.ConditionReady {
						ready = string(c.Status) + "/" + c.Reason
					}
				}
				if ready != "False/"+strings.TrimPrefix(tc.wantCond, "False/") {
					t.Errorf("Ready %s, want False with the condition's reason", ready)
				}
			}
			ext := req.Status.RetentionExtension
			switch {
			case tc.wantKept == "" && ext != nil:
				t.Errorf("retentionExtension %+v, want none", ext)
			case tc.wantKept != "" && (ext == nil || ext.KeptUntil != tc.wantKept || ext.EndsAt.UTC().Format(time.RFC3339) != tc.wantEnds || ext.MaxRetentionExtension != string(tc.cap)):
				t.Errorf("retentionExtension %+v, want kept until %s, ends %s, cap %s", ext, tc.wantKept, tc.wantEnds, tc.cap)
			}
			erase := ""
			if req.Status.ErasureNotBefore != nil {
				erase = req.Status.ErasureNotBefore.UTC().Format(time.RFC3339)
			}
			if erase != tc.wantErase {
				t.Errorf("erasureNotBefore %q, want %q", erase, tc.wantErase)
			}
		})
	}
}

// TestSetObjectionStatus: what an objection reaches, and ObjectionScope:
// True when everything it names exists and every reached route can be
// filtered; False naming the missing activities and routes and the routes
// the proxy refuses whole; neither on another type.
func TestSetObjectionStatus(t *testing.T) {
	store := &v1alpha1.DossierStore{Spec: v1alpha1.DossierStoreSpec{Audit: &v1alpha1.AuditSpec{ProcessingActivity: "ondersteuning", Routes: []v1alpha1.AuditRoute{
		{Name: "read", Path: "/api/dossiers/{dossier}"},
		{Name: "survey-dossier", Path: "/api/survey/{dossier}", ProcessingActivities: []v1alpha1.ActivityName{"onderzoek"}},
		{Name: "survey-addresses", Path: "/api/survey/addresses", ProcessingActivities: []v1alpha1.ActivityName{"onderzoek"},
			Records: &v1alpha1.RecordsSpec{Format: v1alpha1.RecordsJSON, DossierField: "/dossier"}},
		{Name: "survey-count", Path: "/api/survey/count", ProcessingActivities: []v1alpha1.ActivityName{"onderzoek", "statistiek"}},
	}}}}
	objection := func(o v1alpha1.ObjectionSpec) *v1alpha1.DataSubjectRequest {
		req := statusRequest()
		req.Spec.Type, req.Spec.Objection = v1alpha1.RequestObjection, &o
		return req
	}
	cases := []struct {
		name          string
		req           *v1alpha1.DataSubjectRequest
		storeFound    bool
		missing       []string
		wantCondition string
		wantText      string
		want          *v1alpha1.ObjectionStatus
	}{
		{"by route, resolved", objection(v1alpha1.ObjectionSpec{Routes: []string{"survey-dossier"}}), true, nil,
			"True/ScopeResolved", "reaches route survey-dossier", &v1alpha1.ObjectionStatus{Routes: []string{"survey-dossier"}, Activities: []string{}}},
		{"by an activity with a filtered route", objection(v1alpha1.ObjectionSpec{Activities: []v1alpha1.ActivityName{"statistiek"}}), true, nil,
			"False/RouteUnfilterable", "route survey-count has no {dossier} and no records",
			&v1alpha1.ObjectionStatus{Routes: []string{"survey-count"}, Activities: []string{"statistiek"}, UnfilterableRoutes: []string{"survey-count"}}},
		{"the store's activity reaches routes without activities", objection(v1alpha1.ObjectionSpec{Activities: []v1alpha1.ActivityName{"ondersteuning"}}), true, nil,
			"True/ScopeResolved", "reaches route read", &v1alpha1.ObjectionStatus{Routes: []string{"read"}, Activities: []string{"ondersteuning"}}},
		{"an activity that does not exist", objection(v1alpha1.ObjectionSpec{Activities: []v1alpha1.ActivityName{"onderzoek"}}), true, []string{"onderzoek"},
			"False/ActivityNotFound", "ProcessingActivity onderzoek does not exist in this namespace; the audit proxy refuses the routes that name it all the same",
			&v1alpha1.ObjectionStatus{Routes: []string{"survey-addresses", "survey-count", "survey-dossier"}, Activities: []string{"onderzoek"},
				FilteredRoutes: []string{"survey-addresses"}, UnfilterableRoutes: []string{"survey-count"}}},
		{"a route that does not exist", objection(v1alpha1.ObjectionSpec{Routes: []string{"export"}}), true, nil,
			"False/RouteNotFound", "route export is not one of the store's spec.audit.routes", &v1alpha1.ObjectionStatus{Activities: []string{}}},
		{"no store", objection(v1alpha1.ObjectionSpec{Routes: []string{"read"}}), false, nil,
			"False/StoreNotFound", `DossierStore "cjg-dossiers" does not exist`, &v1alpha1.ObjectionStatus{Activities: []string{}}},
		{"another type", statusRequest(), true, nil, "missing", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var routes []dsr.StoreRoute
			if tc.storeFound {
				routes = dsr.StoreRoutes(store)
			}
			f := requestFacts{storeFound: tc.storeFound, objection: objectionFacts{missingActivities: tc.missing}}
			if tc.req.Spec.Objection != nil {
				f.objection.reach = dsr.ReachOfObjection(tc.req.Spec.Objection, routes)
			}
			setObjectionStatus(tc.req, f)
			got := tc.req.Status.Objection
			if (got == nil) != (tc.want == nil) || got != nil && (!slices.Equal(got.Routes, tc.want.Routes) || !slices.Equal(got.Activities, tc.want.Activities) ||
				!slices.Equal(got.FilteredRoutes, tc.want.FilteredRoutes) || !slices.Equal(got.UnfilterableRoutes, tc.want.UnfilterableRoutes)) {
				t.Errorf("status.objection %+v, want %+v", got, tc.want)
			}
			c := meta.FindStatusCondition(tc.req.Status.Conditions, v1alpha1.ConditionObjectionScope)
			switch {
			case c == nil && tc.wantCondition != "missing":
				t.Fatalf("no ObjectionScope condition, want %s", tc.wantCondition)
			case c != nil && (string(c.Status)+"/"+c.Reason != tc.wantCondition || !strings.Contains(c.Message, tc.wantText)):
				t.Errorf("ObjectionScope %s/%s %q, want %s containing %q", c.Status, c.Reason, c.Message, tc.wantCondition, tc.wantText)
			}
		})
	}
}

// TestSetBulkRoutesCondition: False naming the routes the proxy refuses
// whole, True when there are none.
func TestSetBulkRoutesCondition(t *testing.T) {
	store := &v1alpha1.DossierStore{}
	setBulkRoutesCondition(store, []string{"list", "survey-count"})
	c := meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionBulkRoutesFilterable)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRouteUnfilterable || !strings.Contains(c.Message, "route list, survey-count, which has no {dossier} and no records") {
		t.Errorf("with unfilterable routes: %+v", c)
	}
	setBulkRoutesCondition(store, nil)
	if c := meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionBulkRoutesFilterable); c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonBulkRoutesFiltered {
		t.Errorf("without: %+v", c)
	}
}
