package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
)

func newPolicy(t *testing.T, ns, name string, mutate func(*v1alpha1.RetentionPolicy)) *v1alpha1.RetentionPolicy {
	t.Helper()
	p := &v1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.RetentionPolicySpec{
			StoreRef: v1alpha1.StoreReference{Name: "dossiers"},
			Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"},
			Schedule: "0 3 * * *",
			Rules: []v1alpha1.RetentionRule{{
				Name: "dossiers", Table: "dossiers",
				Clock:  v1alpha1.RetentionClock{Event: v1alpha1.ClockEndOfHelp, Column: "help_ended_at"},
				Period: "P20Y", LegalHoldColumn: "legal_hold",
			}},
		},
	}
	if mutate != nil {
		mutate(p)
	}
	if err := k8s.Create(context.Background(), p); err != nil {
		t.Fatalf("create policy: %v", err)
	}
	return p
}

func policyCondition(p *v1alpha1.RetentionPolicy, t string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		return conditionIs(p, func() []metav1.Condition { return p.Status.Conditions }, t, status, reason)
	}
}

// reportRun writes a run into the policy's status, as the sweeper does.
func reportRun(t *testing.T, p *v1alpha1.RetentionPolicy, run v1alpha1.RetentionRun) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	before := p.DeepCopy()
	p.Status.LastRun = &run
	if err := k8s.Status().Patch(ctx, p, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionPolicyProvisionsALeastPrivilegeSweeper(t *testing.T) {
	ctx := context.Background()
	ns, _ := readyStore(t)
	p := newPolicy(t, ns, "bewaartermijn", func(p *v1alpha1.RetentionPolicy) { p.Spec.MaxRunTime = "30m" })
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionReady, metav1.ConditionTrue, "SweeperScheduled"))

	cj := &batchv1.CronJob{}
	if err := k8s.Get(ctx, key(ns, "bewaartermijn-retention"), cj); err != nil {
		t.Fatal(err)
	}
	spec := cj.Spec
	if spec.Schedule != "0 3 * * *" || *spec.TimeZone != "Europe/Amsterdam" || spec.ConcurrencyPolicy != batchv1.ForbidConcurrent ||
		spec.StartingDeadlineSeconds == nil || *spec.SuccessfulJobsHistoryLimit != 3 || *spec.FailedJobsHistoryLimit != 3 {
		t.Errorf("CronJob spec %+v", spec)
	}
	pod := spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	if strings.Join(c.Args, " ") != "retention-sweep --policy=bewaartermijn" || pod.ServiceAccountName != "bewaartermijn-retention" {
		t.Errorf("container args %v, service account %s", c.Args, pod.ServiceAccountName)
	}
	if *spec.JobTemplate.Spec.ActiveDeadlineSeconds != 30*60+60 {
		t.Errorf("active deadline %d; want maxRunTime plus grace", *spec.JobTemplate.Spec.ActiveDeadlineSeconds)
	}
	// Credentials only by reference, never as values or arguments.
	for _, e := range c.Env {
		if e.Value != "" && e.Name != "POD_NAMESPACE" {
			t.Errorf("env %s carries a value", e.Name)
		}
		if strings.HasPrefix(e.Name, "PG") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "db") {
			t.Errorf("env %s is not a reference to Secret db", e.Name)
		}
	}
	sc := c.SecurityContext
	if !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !*sc.RunAsNonRoot || sc.Capabilities.Drop[0] != "ALL" ||
		pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("security context is not restricted: %+v %+v", sc, pod.SecurityContext)
	}

	if err := k8s.Get(ctx, key(ns, "bewaartermijn-retention"), &corev1.ServiceAccount{}); err != nil {
		t.Errorf("service account: %v", err)
	}
	role := &rbacv1.Role{}
	if err := k8s.Get(ctx, key(ns, "bewaartermijn-retention"), role); err != nil {
		t.Fatal(err)
	}
	// Exactly: the policy and its status; for erasure the store, its
	// pseudonym key, the requests (list) and their status (patch).
	wantRules := []string{
		"privacy.dossierguard.io/retentionpolicies[bewaartermijn]:get",
		"privacy.dossierguard.io/retentionpolicies/status[bewaartermijn]:get,patch",
		"privacy.dossierguard.io/dossierstores[dossiers]:get",
		"/secrets[dossiers-pseudonym]:get",
		"privacy.dossierguard.io/datasubjectrequests[]:list",
		"privacy.dossierguard.io/datasubjectrequests/status[]:patch",
	}
	var gotRules []string
	for _, rule := range role.Rules {
		gotRules = append(gotRules, fmt.Sprintf("%s/%s[%s]:%s", strings.Join(rule.APIGroups, ","), strings.Join(rule.Resources, ","),
			strings.Join(rule.ResourceNames, ","), strings.Join(rule.Verbs, ",")))
	}
	if strings.Join(gotRules, " ") != strings.Join(wantRules, " ") {
		t.Errorf("sweeper Role rules\n%s\nwant\n%s", strings.Join(gotRules, "\n"), strings.Join(wantRules, "\n"))
	}
	binding := &rbacv1.RoleBinding{}
	if err := k8s.Get(ctx, key(ns, "bewaartermijn-retention"), binding); err != nil || binding.Subjects[0].Name != "bewaartermijn-retention" {
		t.Errorf("binding %+v: %v", binding.Subjects, err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	if p.Status.Periods != "P20Y" || p.Status.NextRun == nil || p.Status.CronJobName != "bewaartermijn-retention" {
		t.Errorf("status periods %q nextRun %v cronJob %q", p.Status.Periods, p.Status.NextRun, p.Status.CronJobName)
	}
	// Before the first run, enforcement is not yet proven.
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionRetentionEnforced, metav1.ConditionFalse, "AwaitingFirstRun"))
}

func TestRetentionStatusFromAReportedRun(t *testing.T) {
	ns, store := readyStore(t)
	newRole(t, ns, "coach")
	p := newPolicy(t, ns, "bewaartermijn", nil)
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))

	start := metav1.NewTime(fakeClock.Now().Add(-time.Minute).UTC().Truncate(time.Second))
	end := metav1.NewTime(start.Add(10 * time.Second))
	reportRun(t, p, v1alpha1.RetentionRun{StartTime: start, EndTime: &end, Result: v1alpha1.RunSucceeded,
		Destroyed: 12, Held: 2, Rules: []v1alpha1.RuleRun{{Rule: "dossiers", Destroyed: 12, Held: 2}}, ProofDigest: "abc123"})
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionRetentionEnforced, metav1.ConditionTrue, "RunSucceeded"))
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionCompliant, metav1.ConditionTrue, ""))
	if p.Status.LastRun == nil || p.Status.LastRun.Destroyed != 12 {
		t.Errorf("the reconciler lost the reported run: %+v", p.Status.LastRun)
	}
	// The store is now compliant in every control, retention included.
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionTrue, ""))

	// A run that leaves records overdue is not enforcement.
	reportRun(t, p, v1alpha1.RetentionRun{StartTime: start, EndTime: &end, Result: v1alpha1.RunSucceeded, Destroyed: 5, Overdue: 40})
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionRetentionEnforced, metav1.ConditionFalse, "OverdueRecords"))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionFalse, ""))

	// An interrupted run, whose counts may be unknown (-1), is not enforcement either.
	reportRun(t, p, v1alpha1.RetentionRun{StartTime: start, EndTime: &end, Result: v1alpha1.RunInterrupted, Destroyed: 5, Held: -1, Overdue: -1})
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionRetentionEnforced, metav1.ConditionFalse, "RunInterrupted"))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionFalse, ""))

	// A run older than two intervals is a missed run.
	old := metav1.NewTime(start.Add(-72 * time.Hour))
	reportRun(t, p, v1alpha1.RetentionRun{StartTime: old, Result: v1alpha1.RunSucceeded})
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionRetentionEnforced, metav1.ConditionFalse, "RunMissed"))
}

func TestRetentionPeriodsAgainstTheStatute(t *testing.T) {
	ns, _ := readyStore(t) // a YouthAndFamilyCentre: 20 years after the help ended
	cases := []struct {
		name, period, justification, reason string
		compliant                           bool
	}{
		{"statutory", "P20Y", "", "WithinStatutoryRange", true},
		{"below-minimum", "P5Y", "", "BelowStatutoryMinimum", false},
		{"beyond-maximum", "P50Y", "", "BeyondStorageLimit", false},
		{"justified", "P30Y", "Langer bewaren op verzoek van de cliënt, afgestemd met de privacy officer", "JustifiedException", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(t, ns, tc.name, func(p *v1alpha1.RetentionPolicy) {
				p.Spec.Rules[0].Period = v1alpha1.RetentionPeriod(tc.period)
				p.Spec.Rules[0].Justification = tc.justification
			})
			eventually(t, timeout, func() error {
				if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
					return err
				}
				c := findControl(p.Status.Compliance, "StatutoryRetention")
				if c == nil {
					return fmt.Errorf("no StatutoryRetention control yet")
				}
				if (c.Result == v1alpha1.ResultPass) != tc.compliant || !strings.Contains(c.Reason+strings.Join(c.Evidence, " "), tc.reason) {
					return fmt.Errorf("control %+v; want compliant=%v reason %s", c, tc.compliant, tc.reason)
				}
				return nil
			})
		})
	}
}

func TestUnchangedRetentionPolicyAgreementAndRoleMakeNoWrites(t *testing.T) {
	ctx := context.Background()
	ns, _ := readyStore(t)
	p := newPolicy(t, ns, "bewaartermijn", nil)
	a := newAgreement(t, ns, "consent", nil)
	role := newRole(t, ns, "coach")
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionTrue, "InForce"))
	eventually(t, timeout, func() error {
		return conditionIs(role, func() []metav1.Condition { return role.Status.Conditions }, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	// Their compliance reports are kept too, and need no write either.
	for _, name := range []string{"retentionpolicy-bewaartermijn", "sharingagreement-consent", "accessrole-coach"} {
		eventually(t, timeout, func() error { _, err := getReport(ns, name); return err })
		eventually(t, timeout, func() error { _, err := getPolicyReport(ns, name); return err })
	}
	time.Sleep(time.Second)

	writes := &atomic.Int64{}
	c := countingClient{Client: mgrClient, n: writes}
	reconcilers := map[string]reconcile.Reconciler{
		"retention": &controllers.RetentionPolicyReconciler{Client: c, Clock: fakeClock, Image: controllers.DefaultSweeperImage, Statutes: compliance.DefaultStatutes, Reports: reports},
		"sharing":   &controllers.SharingAgreementReconciler{Client: c, Recorder: noEvents{}, Clock: fakeClock, Reports: reports},
		"role":      &controllers.AccessRoleReconciler{Client: c, Clock: fakeClock, Reports: reports},
	}
	objects := map[string]client.Object{"retention": p, "sharing": a, "role": role}
	for name, r := range reconcilers {
		before := writes.Load()
		for i := 0; i < 3; i++ {
			if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(objects[name])}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if n := writes.Load() - before; n != 0 {
			t.Errorf("%s: %d writes reconciling an unchanged object; want 0", name, n)
		}
	}
}

// An older operator applied a CronJob that differs from today's builder in
// fields a hand-written comparison had missed: the pull policy, the grace
// period, the pod labels and the container's name. The next reconcile rolls
// today's CronJob out, removing what the builder no longer sets.
func TestSweeperCronJobChangesRollOut(t *testing.T) {
	ctx := context.Background()
	ns, _ := readyStore(t)
	p := newPolicy(t, ns, "bewaartermijn", nil)
	eventually(t, timeout, policyCondition(p, v1alpha1.ConditionReady, metav1.ConditionTrue, "SweeperScheduled"))
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}

	old := resources.SweeperCronJob(p, controllers.DefaultSweeperImage, int64(time.Hour.Seconds()))
	tmpl := old.Spec.JobTemplate.Spec.Template
	tmpl.Labels["privacy.dossierguard.io/old-label"] = "1"
	tmpl.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	tmpl.Spec.Containers[0].Name = ptr.To("sweeper")
	tmpl.Spec.Containers[0].ImagePullPolicy = ptr.To(corev1.PullAlways)
	if err := k8s.Apply(ctx, old, client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
		t.Fatalf("apply the older CronJob: %v", err)
	}

	want := resources.SweeperCronJob(p, controllers.DefaultSweeperImage, int64(time.Hour.Seconds())).Spec.JobTemplate.Spec.Template
	eventually(t, timeout, func() error {
		cj := &batchv1.CronJob{}
		if err := k8s.Get(ctx, key(ns, "bewaartermijn-retention"), cj); err != nil {
			return err
		}
		pod := cj.Spec.JobTemplate.Spec.Template
		var names []string
		for _, c := range pod.Spec.Containers {
			names = append(names, c.Name)
		}
		switch {
		case fmt.Sprint(names) != "["+*want.Spec.Containers[0].Name+"]":
			return fmt.Errorf("containers %v; want only %s", names, *want.Spec.Containers[0].Name)
		case pod.Spec.Containers[0].ImagePullPolicy != *want.Spec.Containers[0].ImagePullPolicy:
			return fmt.Errorf("image pull policy %s; want %s", pod.Spec.Containers[0].ImagePullPolicy, *want.Spec.Containers[0].ImagePullPolicy)
		case pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds != *want.Spec.TerminationGracePeriodSeconds:
			return fmt.Errorf("termination grace period %v; want %d", pod.Spec.TerminationGracePeriodSeconds, *want.Spec.TerminationGracePeriodSeconds)
		case fmt.Sprint(pod.Labels) != fmt.Sprint(want.Labels):
			return fmt.Errorf("pod labels %v; want %v", pod.Labels, want.Labels)
		}
		return nil
	})
}
