// Package metrics turns the computed status of dossierguard's resources into
// Prometheus series on the manager's metrics endpoint (controller-runtime's
// registry): pure functions from a resource to its samples, and a Recorder
// that sets a resource's series and removes those it no longer has, or all of
// them when the resource is gone.
//
// The series are kept few, as kube-state-metrics and cert-manager keep
// theirs: a resource has series of its own for what an alert names it by
// (a control that does not pass, a key or an agreement with a date, a
// sweep's result), one series carrying the current state rather than one
// for every state it could be in, and the old state's series is deleted
// when the state changes. What a dashboard counts (controls by result) is
// an aggregate by kind, namespace, control and result, whose size does not
// grow with the resources. A healthy installation thus has a handful of
// series per store instead of a hundred.
//
// Labels name Kubernetes objects (kind, namespace, name) and the public
// vocabulary of api/v1alpha1 (controls, results, reasons); never a dossier,
// a person or key material. Moments are exported as Unix timestamps in
// seconds (the Prometheus convention): the time left is
// `dossierguard_..._timestamp_seconds - time()` in PromQL.
package metrics

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The kinds, as the kind label spells them.
const (
	KindDossierStore     = "DossierStore"
	KindAccessRole       = "AccessRole"
	KindSharingAgreement = "SharingAgreement"
	KindRetentionPolicy  = "RetentionPolicy"
)

// The metric names.
const (
	Controls                      = "dossierguard_controls"
	ControlResult                 = "dossierguard_control_result"
	ControlInfo                   = "dossierguard_control_info"
	AgreementInForce              = "dossierguard_sharingagreement_in_force"
	AgreementNextTransition       = "dossierguard_sharingagreement_next_transition_timestamp_seconds"
	DataKeyVersion                = "dossierguard_datakey_version"
	DataKeyCreated                = "dossierguard_datakey_created_timestamp_seconds"
	DataKeyNextRotation           = "dossierguard_datakey_next_rotation_timestamp_seconds"
	AuditSigningKeyVersion        = "dossierguard_audit_signing_key_version"
	AuditSigningKeyCreated        = "dossierguard_audit_signing_key_created_timestamp_seconds"
	AuditSigningKeyNextRotation   = "dossierguard_audit_signing_key_next_rotation_timestamp_seconds"
	RetentionLastRunRecords       = "dossierguard_retention_last_run_records"
	RetentionLastRunResult        = "dossierguard_retention_last_run_result"
	RetentionLastRunTimestamp     = "dossierguard_retention_last_run_timestamp_seconds"
	RetentionLastSuccessTimestamp = "dossierguard_retention_last_success_timestamp_seconds"
	RetentionNextRunTimestamp     = "dossierguard_retention_next_run_timestamp_seconds"
)

// The labels.
const (
	labelKind, labelNS, labelName = "kind", "namespace", "name"
	labelControl, labelResult     = "control", "result"
	labelReason, labelOutcome     = "reason", "outcome"
)

// defaultKeyRotationPeriod is spec.encryption.keyRotationPeriod's default
// (the CRD sets it; an object read before defaulting may lack it).
const defaultKeyRotationPeriod = 2160 * time.Hour

// definition is one gauge: its help and its labels after kind, namespace
// and name, or, for a count, after kind and namespace.
type definition struct {
	help   string
	labels []string
}

// counts are the gauges that are aggregates without the name label: the
// value of a series is the number of resources of the kind in the
// namespace that have the sample, and it is deleted when none has.
var counts = map[string]bool{Controls: true}

var definitions = withSubjectRights(map[string]definition{
	Controls: {"Resources of a kind in a namespace whose privacy control has the result (Pass, Fail or Unknown); absent when none has.",
		[]string{labelControl, labelResult}},
	ControlResult: {"1 while a privacy control of a dossierguard resource does not pass, with its result (Fail or Unknown); absent while it passes.",
		[]string{labelControl, labelResult}},
	ControlInfo: {"The result and reason of a privacy control of a dossierguard resource that does not pass; always 1, absent while it passes.",
		[]string{labelControl, labelResult, labelReason}},
	AgreementInForce:            {"1 while a SharingAgreement is in force (the partner has network access), else 0.", nil},
	AgreementNextTransition:     {"When a SharingAgreement next enters or leaves force, as a Unix timestamp; absent when it never will.", nil},
	DataKeyVersion:              {"The current version of a DossierStore's data key.", nil},
	DataKeyCreated:              {"When the current version of a DossierStore's data key was added (its next rotation minus the rotation period), as a Unix timestamp.", nil},
	DataKeyNextRotation:         {"When a DossierStore's data key is next rotated, as a Unix timestamp; in the past when a rotation is overdue.", nil},
	AuditSigningKeyVersion:      {"The version of a DossierStore's audit checkpoint signing key the audit proxy signs with.", nil},
	AuditSigningKeyCreated:      {"When the version of a DossierStore's audit signing key the proxy signs with was made, as a Unix timestamp.", nil},
	AuditSigningKeyNextRotation: {"When a DossierStore's audit signing key is next rotated, as a Unix timestamp; in the past when a rotation is overdue.", nil},
	RetentionLastRunRecords: {"Records of a RetentionPolicy's last sweep by outcome: destroyed, anonymised, held (legal hold) and overdue (still due after the run; -1 when it could not count).",
		[]string{labelOutcome}},
	RetentionLastRunResult: {"Result of a RetentionPolicy's last sweep (Succeeded, Failed, Interrupted or DryRun); always 1, the series of the previous result is deleted.",
		[]string{labelResult}},
	RetentionLastRunTimestamp:     {"When a RetentionPolicy's last sweep started, as a Unix timestamp.", nil},
	RetentionLastSuccessTimestamp: {"When a RetentionPolicy's last sweep ended, if it succeeded, as a Unix timestamp; absent when the last sweep did not succeed.", nil},
	RetentionNextRunTimestamp:     {"When a RetentionPolicy's next sweep is scheduled, as a Unix timestamp.", nil},
})

// Object names one resource's series.
type Object struct{ Kind, Namespace, Name string }

// Sample is one series of an object: the metric, its labels after kind,
// namespace and name (in the definition's order), and the value.
type Sample struct {
	Metric string
	Labels []string
	Value  float64
}

func (s Sample) key() string { return s.Metric + "\x00" + strings.Join(s.Labels, "\x00") }

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// ControlSamples are the samples of a status's compliance controls: each
// control counted under its result, and the result and reason of each
// control that does not pass (a passing control has no series of its own).
func ControlSamples(controls []v1alpha1.ComplianceControl) []Sample {
	var out []Sample
	for _, c := range controls {
		result := string(c.Result)
		out = append(out, Sample{Controls, []string{c.Control, result}, 1})
		if c.Result != v1alpha1.ResultPass {
			out = append(out,
				Sample{ControlResult, []string{c.Control, result}, 1},
				Sample{ControlInfo, []string{c.Control, result, c.Reason}, 1})
		}
	}
	return out
}

// Store is a DossierStore's samples: its controls, its data key and its
// audit signing key (status.auditSigningKey; never the key id, which is
// not a label here, nor key material).
func Store(s *v1alpha1.DossierStore) []Sample {
	out := ControlSamples(s.Status.Compliance)
	if s.Status.KeyVersion > 0 {
		out = append(out, Sample{DataKeyVersion, nil, float64(s.Status.KeyVersion)})
	}
	if next := s.Status.NextKeyRotation; next != nil {
		out = append(out, Sample{DataKeyNextRotation, nil, unix(next.Time)})
		period := defaultKeyRotationPeriod
		if d, err := time.ParseDuration(s.Spec.Encryption.KeyRotationPeriod); err == nil && d > 0 {
			period = d
		}
		out = append(out, Sample{DataKeyCreated, nil, unix(next.Add(-period))})
	}
	if k := s.Status.AuditSigningKey; k != nil {
		out = append(out,
			Sample{AuditSigningKeyVersion, nil, float64(k.Version)},
			Sample{AuditSigningKeyCreated, nil, unix(k.Created.Time)},
			Sample{AuditSigningKeyNextRotation, nil, unix(k.NextRotation.Time)},
		)
	}
	return out
}

// AccessRole is an AccessRole's samples: its controls.
func AccessRole(r *v1alpha1.AccessRole) []Sample { return ControlSamples(r.Status.Compliance) }

// Agreement is a SharingAgreement's samples: its controls, whether it is in
// force and when that next changes.
func Agreement(a *v1alpha1.SharingAgreement) []Sample {
	out := append(ControlSamples(a.Status.Compliance), Sample{AgreementInForce, nil, bit(a.Status.InForce)})
	if next := a.Status.NextTransition; next != nil {
		out = append(out, Sample{AgreementNextTransition, nil, unix(next.Time)})
	}
	return out
}

// RetentionPolicy is a RetentionPolicy's samples: its controls, its last
// sweep and the next.
func RetentionPolicy(p *v1alpha1.RetentionPolicy) []Sample {
	out := ControlSamples(p.Status.Compliance)
	if next := p.Status.NextRun; next != nil {
		out = append(out, Sample{RetentionNextRunTimestamp, nil, unix(next.Time)})
	}
	run := p.Status.LastRun
	if run == nil {
		return out
	}
	out = append(out,
		Sample{RetentionLastRunResult, []string{string(run.Result)}, 1},
		Sample{RetentionLastRunRecords, []string{"destroyed"}, float64(run.Destroyed)},
		Sample{RetentionLastRunRecords, []string{"anonymised"}, float64(run.Anonymised)},
		Sample{RetentionLastRunRecords, []string{"held"}, float64(run.Held)},
		Sample{RetentionLastRunRecords, []string{"overdue"}, float64(run.Overdue)},
		Sample{RetentionLastRunTimestamp, nil, unix(run.StartTime.Time)},
	)
	if run.Result == v1alpha1.RunSucceeded {
		end := run.StartTime.Time
		if run.EndTime != nil {
			end = run.EndTime.Time
		}
		out = append(out, Sample{RetentionLastSuccessTimestamp, nil, unix(end)})
	}
	return out
}

// Recorder holds the series each object has and the counts the objects
// add up to, and serves them as a prometheus.Collector: the series are
// made from its own state at each scrape (as kube-state-metrics makes
// them), so a series costs the recorder one Sample, not a gauge of the
// client library's with its label pairs and hash maps besides.
type Recorder struct {
	mu    sync.Mutex
	descs map[string]*prometheus.Desc
	// series are each object's own samples.
	series map[Object][]Sample
	// counted are the counts each object is in; tallies are those counts
	// by key (metric, kind, namespace and labels), each object's share held
	// as a pointer so that it costs a word, not a copy of the labels.
	counted map[Object][]*tally
	tallies map[string]*tally
}

// tally is one series of a count: its metric, its labels from kind on,
// and the number of objects that have it.
type tally struct {
	metric string
	labels []string
	n      int
}

// NewRecorder registers a recorder with reg.
func NewRecorder(reg prometheus.Registerer) *Recorder {
	r := &Recorder{descs: map[string]*prometheus.Desc{}, series: map[Object][]Sample{},
		counted: map[Object][]*tally{}, tallies: map[string]*tally{}}
	for name, d := range definitions {
		labels := []string{labelKind, labelNS, labelName}
		if counts[name] {
			labels = []string{labelKind, labelNS}
		}
		r.descs[name] = prometheus.NewDesc(name, d.help, append(labels, d.labels...), nil)
	}
	reg.MustRegister(r)
	return r
}

// Describe sends the descriptions of every metric of the package.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	names := make([]string, 0, len(r.descs))
	for name := range r.descs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ch <- r.descs[name]
	}
}

// Collect sends every series: each object's samples and each count.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for o, samples := range r.series {
		for _, s := range samples {
			if m, err := prometheus.NewConstMetric(r.descs[s.Metric], prometheus.GaugeValue, s.Value, r.labels(o, s)...); err == nil {
				ch <- m
			}
		}
	}
	for _, t := range r.tallies {
		if m, err := prometheus.NewConstMetric(r.descs[t.metric], prometheus.GaugeValue, float64(t.n), t.labels...); err == nil {
			ch <- m
		}
	}
}

func (r *Recorder) labels(o Object, s Sample) []string {
	return append([]string{o.Kind, o.Namespace, o.Name}, s.Labels...)
}

// Set makes samples the object's series, in place of those it had; a
// sample of a count adds the object to that count, and a count no object
// is in any more is deleted. A sample of no metric of the package, or one
// the object has twice, is left out.
func (r *Recorder) Set(o Object, samples []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var own []Sample
	var counted []*tally
	seen := make(map[string]bool, len(samples))
	for _, s := range samples {
		d, ok := definitions[s.Metric]
		if !ok || len(s.Labels) != len(d.labels) || seen[s.key()] {
			continue // a programming error, never a panic or a failed scrape
		}
		seen[s.key()] = true
		if counts[s.Metric] {
			counted = append(counted, r.tally(o, s))
			continue
		}
		own = append(own, s)
	}
	r.recount(o, counted)
	if len(own) == 0 {
		delete(r.series, o)
		return
	}
	r.series[o] = own
}

// tally is the count of the object's kind and namespace that s is a
// sample of, made (at zero) if there is none yet.
func (r *Recorder) tally(o Object, s Sample) *tally {
	key := tallyKey(s.Metric, append([]string{o.Kind, o.Namespace}, s.Labels...))
	t, ok := r.tallies[key]
	if !ok {
		t = &tally{metric: s.Metric, labels: append([]string{o.Kind, o.Namespace}, s.Labels...)}
		r.tallies[key] = t
	}
	return t
}

func tallyKey(metric string, labels []string) string {
	return metric + "\x00" + strings.Join(labels, "\x00")
}

// recount moves the object from the counts it was in to those it is in
// now, deleting each count that fell to zero.
func (r *Recorder) recount(o Object, now []*tally) {
	before := r.counted[o]
	for _, t := range now {
		if !containsTally(before, t) {
			t.n++
		}
	}
	for _, t := range before {
		if containsTally(now, t) {
			continue
		}
		if t.n--; t.n == 0 {
			delete(r.tallies, tallyKey(t.metric, t.labels))
		}
	}
	if len(now) == 0 {
		delete(r.counted, o)
		return
	}
	r.counted[o] = now
}

func containsTally(ts []*tally, t *tally) bool {
	for _, u := range ts {
		if u == t {
			return true
		}
	}
	return false
}

// Forget deletes every series of the object.
func (r *Recorder) Forget(o Object) { r.Set(o, nil) }

// Default is the recorder on controller-runtime's registry, which the
// manager serves on its metrics endpoint.
var Default = NewRecorder(ctrlmetrics.Registry)

// RecordStore sets a DossierStore's series from its status.
func RecordStore(s *v1alpha1.DossierStore) {
	Default.Set(Object{KindDossierStore, s.Namespace, s.Name}, Store(s))
}

// RecordAccessRole sets an AccessRole's series from its status.
func RecordAccessRole(a *v1alpha1.AccessRole) {
	Default.Set(Object{KindAccessRole, a.Namespace, a.Name}, AccessRole(a))
}

// RecordAgreement sets a SharingAgreement's series from its status.
func RecordAgreement(a *v1alpha1.SharingAgreement) {
	Default.Set(Object{KindSharingAgreement, a.Namespace, a.Name}, Agreement(a))
}

// RecordRetentionPolicy sets a RetentionPolicy's series from its status.
func RecordRetentionPolicy(p *v1alpha1.RetentionPolicy) {
	Default.Set(Object{KindRetentionPolicy, p.Namespace, p.Name}, RetentionPolicy(p))
}

// Forget deletes every series of a resource of the kind that is gone.
func Forget(kind, namespace, name string) { Default.Forget(Object{kind, namespace, name}) }

// Names are the metrics the manager exports from this package, as its
// registry describes them.
func Names() []string {
	reg := &describingRegisterer{}
	NewRecorder(reg)
	return DescribedNames(reg.collectors...)
}

// DescribedNames are the names of the metrics the collectors describe,
// sorted and without duplicates.
func DescribedNames(collectors ...prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	seen := map[string]bool{}
	for d := range ch {
		// A Desc shows its name only in its string: Desc{fqName: "name", ...}.
		s := d.String()
		if m := fqName.FindStringSubmatch(s); m != nil {
			seen[m[1]] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describingRegisterer keeps what is registered with it.
type describingRegisterer struct{ collectors []prometheus.Collector }

func (r *describingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *describingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *describingRegisterer) Unregister(prometheus.Collector) bool { return false }
