package resources

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestErasureJob(t *testing.T) {
	policy := &v1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bewaartermijn", Namespace: "wijkteam", UID: types.UID("p-uid")},
		Spec: v1alpha1.RetentionPolicySpec{StoreRef: v1alpha1.StoreReference{Name: "dossiers"}, Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"}, Schedule: "0 3 * * *"}}
	request := &v1alpha1.DataSubjectRequest{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("verwijdering-", 6), Namespace: "wijkteam", UID: types.UID("r-uid")}}
	sweeper := func(mutate func(*batchv1.CronJob)) *batchv1.CronJob {
		c := &batchv1.CronJob{}
		if err := typedInto(SweeperCronJob(policy, "img", 600), c); err != nil {
			t.Fatal(err)
		}
		c.UID = "c-uid"
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		cron    *batchv1.CronJob
		wantErr string
	}{
		{name: "the policy's sweeper", cron: sweeper(nil)},
		{name: "another CronJob", cron: sweeper(func(c *batchv1.CronJob) { c.Name = "other" }), wantErr: "is not the sweeper"},
		{name: "not owned by the policy", cron: sweeper(func(c *batchv1.CronJob) { c.OwnerReferences = nil }), wantErr: "is not the sweeper"},
		{name: "a second container", cron: sweeper(func(c *batchv1.CronJob) {
			s := &c.Spec.JobTemplate.Spec.Template.Spec
			s.Containers = append(s.Containers, s.Containers[0])
		}), wantErr: "exactly one retention-sweep container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, err := ErasureJob(request, policy, tc.cron)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := *job.Name; len(n) > 63 || n != ErasureJobName(request, policy) {
				t.Errorf("name %q (%d characters); want ErasureJobName, at most 63", n, len(n))
			}
			args := job.Spec.Template.Spec.Containers[0].Args
			if !slices.Equal(args, []string{"retention-sweep", "--policy=bewaartermijn", ErasuresOnlyFlag}) {
				t.Errorf("args %v", args)
			}
			if o := job.OwnerReferences; len(o) != 1 || *o[0].UID != request.UID || !*o[0].Controller {
				t.Errorf("owner references %+v; want the request as controller", o)
			}
			if *job.Spec.Template.Spec.ServiceAccountName != SweeperName(policy) {
				t.Errorf("service account %q", *job.Spec.Template.Spec.ServiceAccountName)
			}
		})
	}
	other := request.DeepCopy()
	other.Name = strings.Repeat("verwijdering-", 6) + "2"
	if ErasureJobName(other, policy) == ErasureJobName(request, policy) {
		t.Error("two requests with the same first 50 characters share a Job name")
	}
}

func typedInto(ac any, into any) error {
	data, err := json.Marshal(ac)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}
