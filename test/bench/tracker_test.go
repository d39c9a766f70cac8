package bench

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// convergence keeps, incrementally, which of the benchmark's objects have
// converged: Ready, settled (a store's status reflects its role, agreement
// and policy) and in step with its Report. Each change an informer sees
// re-checks only the object that changed (or, for a Report, the object it
// is of), so that the benchmark's own check costs the machine it measures
// next to nothing, however many objects there are.
type convergence struct {
	mu      sync.Mutex
	want    int
	start   time.Time
	objects map[types.UID]*objectState
	// reports are the results of each Report, by the UID of its resource.
	reports map[types.UID][]openreportsv1alpha1.ReportResult
	// ready, settled, inStep and done count the objects with each property.
	ready, settled, inStep, done int
	// firstDone is when each kind's objects first converged, since start.
	firstDone map[string][]time.Duration
	all       chan struct{}
	closed    bool
}

// objectState is what the benchmark knows of one of its objects.
type objectState struct {
	kind                   string
	rows                   []v1alpha1.ComplianceControl
	ready, settled, inStep bool
	everDone               bool
}

func (s *objectState) done() bool { return s.ready && s.settled && s.inStep }

// newConvergence expects want objects; the clock of firstDone starts now.
func newConvergence(want int) *convergence {
	return &convergence{want: want, start: time.Now(), objects: map[types.UID]*objectState{},
		reports: map[types.UID][]openreportsv1alpha1.ReportResult{}, firstDone: map[string][]time.Duration{}, all: make(chan struct{})}
}

// restart resets the clock of firstDone (the objects are created after the
// informers start).
func (c *convergence) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start = time.Now()
}

// allDone is closed when every expected object has converged.
func (c *convergence) allDone() <-chan struct{} { return c.all }

// counts are the objects Ready, the stores settled, the objects whose
// Report is in step and the objects converged.
func (c *convergence) counts() (ready, settled, inStep, done int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready, c.settled, c.inStep, c.done
}

// observe records the state of a resource of the benchmark.
func (c *convergence) observe(uid types.UID, kind string, status *v1alpha1.CommonStatus, settled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.objects[uid]
	if s == nil {
		s = &objectState{kind: kind}
		c.objects[uid] = s
	}
	c.count(s, -1)
	s.rows = status.Compliance
	s.ready = meta.IsStatusConditionTrue(status.Conditions, v1alpha1.ConditionReady)
	s.settled = settled
	s.inStep = inStep(s.rows, c.reports[uid])
	c.count(s, 1)
}

// forget drops a deleted resource.
func (c *convergence) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.objects[uid]; s != nil {
		c.count(s, -1)
		delete(c.objects, uid)
	}
}

// observeReport records the results of the Report of the resource scope;
// results nil means the Report is gone.
func (c *convergence) observeReport(scope types.UID, results []openreportsv1alpha1.ReportResult, gone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gone {
		delete(c.reports, scope)
	} else {
		c.reports[scope] = results
	}
	if s := c.objects[scope]; s != nil {
		c.count(s, -1)
		s.inStep = !gone && inStep(s.rows, results)
		c.count(s, 1)
	}
}

// count adds sign times s's properties to the counters; the caller holds mu.
func (c *convergence) count(s *objectState, sign int) {
	b := func(v bool) int {
		if v {
			return sign
		}
		return 0
	}
	c.ready += b(s.ready)
	c.settled += b(s.settled && s.kind == "DossierStore")
	c.inStep += b(s.inStep)
	c.done += b(s.done())
	if sign > 0 && s.done() && !s.everDone {
		s.everDone = true
		c.firstDone[s.kind] = append(c.firstDone[s.kind], time.Since(c.start))
	}
	if c.done >= c.want && !c.closed {
		c.closed = true
		close(c.all)
	}
}

// timeline prints, by kind, how long after the start the objects first
// converged: the first, the median, the 90th percentile and the last.
func (c *convergence) timeline() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.firstDone))
	for k := range c.firstDone {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var sb strings.Builder
	for _, k := range kinds {
		ds := append([]time.Duration(nil), c.firstDone[k]...)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		q := func(p float64) float64 { return ds[int(p*float64(len(ds)-1))].Seconds() }
		fmt.Fprintf(&sb, "  %-18s %5d  first %6.1f s  median %6.1f s  p90 %6.1f s  last %6.1f s\n", k, len(ds), q(0), q(0.5), q(0.9), q(1))
	}
	return sb.String()
}

// handler feeds one informer's changes to the tracker.
func (c *convergence) handler() toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.update(o) },
		UpdateFunc: func(_, o any) { c.update(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			switch o := o.(type) {
			case *openreportsv1alpha1.Report:
				if o.Scope != nil {
					c.observeReport(o.Scope.UID, nil, true)
				}
			case interface{ GetUID() types.UID }:
				c.forget(o.GetUID())
			}
		},
	}
}

func (c *convergence) update(o any) {
	switch o := o.(type) {
	case *v1alpha1.DossierStore:
		c.observe(o.UID, "DossierStore", &o.Status.CommonStatus, storeSettled(o))
	case *v1alpha1.AccessRole:
		c.observe(o.UID, "AccessRole", &o.Status.CommonStatus, true)
	case *v1alpha1.SharingAgreement:
		c.observe(o.UID, "SharingAgreement", &o.Status.CommonStatus, true)
	case *v1alpha1.RetentionPolicy:
		c.observe(o.UID, "RetentionPolicy", &o.Status.CommonStatus, true)
	case *openreportsv1alpha1.Report:
		if o.Scope != nil {
			c.observeReport(o.Scope.UID, o.Results, false)
		}
	}
}

// storeSettled says whether a store's status reflects its referrers: the
// agreement in force, the role rendered, the retention policy seen.
func storeSettled(s *v1alpha1.DossierStore) bool {
	if s.Status.Agreements == nil || s.Status.Agreements.InForce != 1 {
		return false
	}
	ok := 0
	for _, c := range s.Status.Compliance {
		if (c.Control == "AccessControlDefined" && c.Result == v1alpha1.ResultPass) ||
			(c.Control == "RetentionEnforced" && c.Reason == "AwaitingFirstRun") {
			ok++
		}
	}
	return ok == 2
}

// inStep says whether a Report's results say what the compliance rows of
// its resource's status say: the same controls in the same order, with
// the same messages and results (a row's Unknown is any result).
func inStep(rows []v1alpha1.ComplianceControl, results []openreportsv1alpha1.ReportResult) bool {
	if len(rows) == 0 || len(results) != len(rows) {
		return false
	}
	for i, row := range rows {
		r := results[i]
		if r.Policy != row.Control || r.Description != row.Message ||
			(string(r.Result) != strings.ToLower(string(row.Result)) && row.Result != v1alpha1.ResultUnknown) {
			return false
		}
	}
	return true
}
