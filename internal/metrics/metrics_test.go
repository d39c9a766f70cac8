package metrics

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

func TestSamples(t *testing.T) {
	fail := []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlKeyManagement, Result: v1alpha1.ResultFail, Reason: v1alpha1.ReasonKeyRotationFailed}}
	failSamples := []Sample{
		{Controls, []string{"KeyManagement", "Fail"}, 1},
		{ControlResult, []string{"KeyManagement", "Fail"}, 1},
		{ControlInfo, []string{"KeyManagement", "Fail", v1alpha1.ReasonKeyRotationFailed}, 1},
	}
	for _, c := range []struct {
		name string
		got  []Sample
		want []Sample
	}{
		{"store without status", Store(&v1alpha1.DossierStore{}), nil},
		{"store with a key, default period", Store(&v1alpha1.DossierStore{Status: v1alpha1.DossierStoreStatus{
			CommonStatus: v1alpha1.CommonStatus{Compliance: fail}, KeyVersion: 3, NextKeyRotation: at(t0)}}),
			append(append([]Sample{}, failSamples...),
				Sample{DataKeyVersion, nil, 3},
				Sample{DataKeyNextRotation, nil, float64(t0.Unix())},
				Sample{DataKeyCreated, nil, float64(t0.Add(-2160 * time.Hour).Unix())})},
		{"store with its own rotation period", Store(&v1alpha1.DossierStore{
			Spec:   v1alpha1.DossierStoreSpec{Encryption: v1alpha1.EncryptionSpec{KeyRotationPeriod: "24h"}},
			Status: v1alpha1.DossierStoreStatus{KeyVersion: 1, NextKeyRotation: at(t0)}}),
			[]Sample{{DataKeyVersion, nil, 1}, {DataKeyNextRotation, nil, float64(t0.Unix())}, {DataKeyCreated, nil, float64(t0.Add(-24 * time.Hour).Unix())}}},
		{"store with an audit signing key", Store(&v1alpha1.DossierStore{Status: v1alpha1.DossierStoreStatus{
			AuditSigningKey: &v1alpha1.SigningKeyStatus{KeyID: "0123456789abcdef", Version: 4, Created: metav1.Time{Time: t0.Add(-24 * time.Hour)},
				Versions: 2, NextRotation: metav1.Time{Time: t0}}}}),
			[]Sample{{AuditSigningKeyVersion, nil, 4}, {AuditSigningKeyCreated, nil, float64(t0.Add(-24 * time.Hour).Unix())},
				{AuditSigningKeyNextRotation, nil, float64(t0.Unix())}}},
		{"controls: a passing one is only counted, an unknown one has its series", ControlSamples([]v1alpha1.ComplianceControl{
			{Control: v1alpha1.ControlKeyManagement, Result: v1alpha1.ResultPass, Reason: v1alpha1.ReasonKeyRotationFailed},
			{Control: v1alpha1.ControlRetentionEnforced, Result: v1alpha1.ResultUnknown, Reason: v1alpha1.ReasonRunMissed}}),
			[]Sample{
				{Controls, []string{"KeyManagement", "Pass"}, 1},
				{Controls, []string{"RetentionEnforced", "Unknown"}, 1},
				{ControlResult, []string{"RetentionEnforced", "Unknown"}, 1},
				{ControlInfo, []string{"RetentionEnforced", "Unknown", v1alpha1.ReasonRunMissed}, 1},
			}},
		{"access role", AccessRole(&v1alpha1.AccessRole{Status: v1alpha1.AccessRoleStatus{CommonStatus: v1alpha1.CommonStatus{Compliance: fail}}}), failSamples},
		{"agreement out of force, never again", Agreement(&v1alpha1.SharingAgreement{}), []Sample{{AgreementInForce, nil, 0}}},
		{"agreement in force until", Agreement(&v1alpha1.SharingAgreement{Status: v1alpha1.SharingAgreementStatus{InForce: true, NextTransition: at(t0)}}),
			[]Sample{{AgreementInForce, nil, 1}, {AgreementNextTransition, nil, float64(t0.Unix())}}},
		{"retention policy awaiting its first run", RetentionPolicy(&v1alpha1.RetentionPolicy{Status: v1alpha1.RetentionPolicyStatus{NextRun: at(t0)}}),
			[]Sample{{RetentionNextRunTimestamp, nil, float64(t0.Unix())}}},
		{"retention run succeeded", RetentionPolicy(&v1alpha1.RetentionPolicy{Status: v1alpha1.RetentionPolicyStatus{LastRun: &v1alpha1.RetentionRun{
			StartTime: metav1.Time{Time: t0}, EndTime: at(t0.Add(time.Minute)), Result: v1alpha1.RunSucceeded, Destroyed: 7, Anonymised: 2, Held: 1}}}),
			[]Sample{
				{RetentionLastRunResult, []string{"Succeeded"}, 1},
				{RetentionLastRunRecords, []string{"destroyed"}, 7}, {RetentionLastRunRecords, []string{"anonymised"}, 2},
				{RetentionLastRunRecords, []string{"held"}, 1}, {RetentionLastRunRecords, []string{"overdue"}, 0},
				{RetentionLastRunTimestamp, nil, float64(t0.Unix())},
				{RetentionLastSuccessTimestamp, nil, float64(t0.Add(time.Minute).Unix())},
			}},
		{"retention run failed: no success timestamp", RetentionPolicy(&v1alpha1.RetentionPolicy{Status: v1alpha1.RetentionPolicyStatus{LastRun: &v1alpha1.RetentionRun{
			StartTime: metav1.Time{Time: t0}, Result: v1alpha1.RunFailed, Overdue: -1}}}),
			[]Sample{
				{RetentionLastRunResult, []string{"Failed"}, 1},
				{RetentionLastRunRecords, []string{"destroyed"}, 0}, {RetentionLastRunRecords, []string{"anonymised"}, 0},
				{RetentionLastRunRecords, []string{"held"}, 0}, {RetentionLastRunRecords, []string{"overdue"}, -1},
				{RetentionLastRunTimestamp, nil, float64(t0.Unix())},
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("samples\n got %v\nwant %v", c.got, c.want)
			}
			for _, s := range c.got {
				if d, ok := definitions[s.Metric]; !ok || len(d.labels) != len(s.Labels) {
					t.Errorf("sample %v does not fit a definition", s)
				}
			}
		})
	}
}

// TestRecorder: Set replaces an object's series, keeps other objects', and
// Forget removes them all.
func TestRecorder(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRecorder(reg)
	a := Object{KindSharingAgreement, "jeugd", "ggd"}
	b := Object{KindSharingAgreement, "jeugd", "school"}
	r.Set(a, []Sample{{AgreementInForce, nil, 1}, {AgreementNextTransition, nil, 100}})
	r.Set(b, []Sample{{AgreementInForce, nil, 0}})
	expect := func(want string, names ...string) {
		t.Helper()
		header := ""
		for _, n := range names {
			header += "# HELP " + n + " " + definitions[n].help + "\n# TYPE " + n + " gauge\n"
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(header+want), names...); err != nil {
			t.Error(err)
		}
	}
	expect(`dossierguard_sharingagreement_in_force{kind="SharingAgreement",name="ggd",namespace="jeugd"} 1
dossierguard_sharingagreement_in_force{kind="SharingAgreement",name="school",namespace="jeugd"} 0
dossierguard_sharingagreement_next_transition_timestamp_seconds{kind="SharingAgreement",name="ggd",namespace="jeugd"} 100
`, AgreementInForce, AgreementNextTransition)

	// The agreement leaves force for good: its next transition goes.
	r.Set(a, []Sample{{AgreementInForce, nil, 0}})
	if n := testutil.CollectAndCount(r, AgreementNextTransition); n != 0 {
		t.Errorf("%d next-transition series after the transition went, want 0", n)
	}
	r.Forget(b)
	expect(`dossierguard_sharingagreement_in_force{kind="SharingAgreement",name="ggd",namespace="jeugd"} 0
`, AgreementInForce)
	r.Forget(a)
	if n := testutil.CollectAndCount(r, AgreementInForce); n != 0 || len(r.series) != 0 {
		t.Errorf("%d series and %d objects after Forget, want none", n, len(r.series))
	}
	// A sample of no metric of this package is ignored, never a panic.
	r.Set(a, []Sample{{"other", nil, 1}, {ControlResult, []string{"only-one-label"}, 1}})
	if len(r.series) != 0 {
		t.Errorf("unknown samples were recorded: %v", r.series)
	}
}

// TestDefaultIsOnTheManagersRegistry: the manager serves the gauges.
func TestDefaultIsOnTheManagersRegistry(t *testing.T) {
	RecordAgreement(&v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "a"}, Status: v1alpha1.SharingAgreementStatus{InForce: true}})
	defer Forget(KindSharingAgreement, "n", "a")
	if n, err := testutil.GatherAndCount(ctrlmetrics.Registry, AgreementInForce); err != nil || n != 1 {
		t.Errorf("controller-runtime's registry has %d %s series (err %v), want 1", n, AgreementInForce, err)
	}
}

// TestRecorderCounts: a control's count follows the resources' results,
// a resource that changes result moves from one count to the other, and a
// count no resource is in any more is deleted, as are the series of a
// control that passes again.
func TestRecorderCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRecorder(reg)
	control := func(result v1alpha1.ComplianceResult) []v1alpha1.ComplianceControl {
		return []v1alpha1.ComplianceControl{{Control: v1alpha1.ControlKeyManagement, Result: result, Reason: "Because"}}
	}
	a, b, c := Object{KindDossierStore, "jeugd", "a"}, Object{KindDossierStore, "jeugd", "b"}, Object{KindDossierStore, "wmo", "c"}
	expect := func(step, want string, names ...string) {
		t.Helper()
		header := ""
		for _, n := range names {
			if strings.Contains(want, n+"{") {
				header += "# HELP " + n + " " + definitions[n].help + "\n# TYPE " + n + " gauge\n"
			}
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(header+want), names...); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	r.Set(a, ControlSamples(control(v1alpha1.ResultPass)))
	r.Set(b, ControlSamples(control(v1alpha1.ResultPass)))
	r.Set(c, ControlSamples(control(v1alpha1.ResultFail)))
	// Set again, unchanged: counted once, not twice.
	r.Set(b, ControlSamples(control(v1alpha1.ResultPass)))
	expect("all set", `dossierguard_controls{control="KeyManagement",kind="DossierStore",namespace="jeugd",result="Pass"} 2
dossierguard_controls{control="KeyManagement",kind="DossierStore",namespace="wmo",result="Fail"} 1
dossierguard_control_result{control="KeyManagement",kind="DossierStore",name="c",namespace="wmo",result="Fail"} 1
`, Controls, ControlResult)

	r.Set(b, ControlSamples(control(v1alpha1.ResultUnknown)))
	r.Set(c, ControlSamples(control(v1alpha1.ResultPass)))
	expect("b unknown, c passes", `dossierguard_controls{control="KeyManagement",kind="DossierStore",namespace="jeugd",result="Pass"} 1
dossierguard_controls{control="KeyManagement",kind="DossierStore",namespace="jeugd",result="Unknown"} 1
dossierguard_controls{control="KeyManagement",kind="DossierStore",namespace="wmo",result="Pass"} 1
dossierguard_control_result{control="KeyManagement",kind="DossierStore",name="b",namespace="jeugd",result="Unknown"} 1
dossierguard_control_info{control="KeyManagement",kind="DossierStore",name="b",namespace="jeugd",reason="Because",result="Unknown"} 1
`, Controls, ControlResult, ControlInfo)

	for _, o := range []Object{a, b, c} {
		r.Forget(o)
	}
	for _, m := range []string{Controls, ControlResult, ControlInfo} {
		if n := testutil.CollectAndCount(r, m); n != 0 {
			t.Errorf("%d %s series after every resource went, want none", n, m)
		}
	}
	if len(r.series) != 0 || len(r.counted) != 0 || len(r.tallies) != 0 {
		t.Errorf("the recorder still holds %d objects' series, %d objects' counts and %d counts, want none", len(r.series), len(r.counted), len(r.tallies))
	}
}

// TestNoSeriesPerPassingControl: a resource whose controls all pass has no
// series of its own for them, whatever their number; that is what keeps
// the manager's memory from growing with a hundred series per store.
func TestNoSeriesPerPassingControl(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRecorder(reg)
	var controls []v1alpha1.ComplianceControl
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		controls = append(controls, v1alpha1.ComplianceControl{Control: name, Result: v1alpha1.ResultPass, Reason: "Ok"})
	}
	for i := 0; i < 50; i++ {
		r.Set(Object{KindAccessRole, "jeugd", fmt.Sprintf("role-%d", i)}, ControlSamples(controls))
	}
	if n := testutil.CollectAndCount(r, ControlResult) + testutil.CollectAndCount(r, ControlInfo); n != 0 {
		t.Errorf("%d per-resource control series of passing controls, want none", n)
	}
	if n := testutil.CollectAndCount(r, Controls); n != len(controls) {
		t.Errorf("%d counts, want one per control (%d)", n, len(controls))
	}
}
