package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// ErasuresOnlyFlag makes `dossierguard retention-sweep` carry out the
// granted erasures only.
const ErasuresOnlyFlag = "--erasures-only"

// ErasureJobTTLSeconds keeps a finished erasure Job (and its pod's log)
// for a day; the request's status.erasure holds the proof.
const ErasureJobTTLSeconds = 24 * 60 * 60

// ErasureJobName is the name of the Job that carries out the erasure
// request r in the tables of policy: derived from both, at most 63
// characters (it becomes a pod label), the same on every reconcile.
func ErasureJobName(r *v1alpha1.DataSubjectRequest, policy *v1alpha1.RetentionPolicy) string {
	sum := sha256.Sum256([]byte(r.Name + "/" + policy.Name))
	prefix := "erasure-" + r.Name
	if len(prefix) > 50 {
		prefix = prefix[:50]
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:12]
}

// ErasureJob is a Job made from the policy's sweeper CronJob's jobTemplate
// that carries out only the granted erasures (ErasuresOnlyFlag), owned by
// the request r so that it goes with the request. It fails closed: a
// CronJob that is not the policy's sweeper, or whose template has not
// exactly the one sweeper container, gives an error and no Job.
func ErasureJob(r *v1alpha1.DataSubjectRequest, policy *v1alpha1.RetentionPolicy, cron *batchv1.CronJob) (*batchv1ac.JobApplyConfiguration, error) {
	if cron.Name != SweeperName(policy) || cron.Namespace != policy.Namespace || !ownedBy(cron.OwnerReferences, policy) {
		return nil, fmt.Errorf("CronJob %s is not the sweeper of RetentionPolicy %s", cron.Name, policy.Name)
	}
	tmpl := cron.Spec.JobTemplate.Spec.DeepCopy()
	containers := tmpl.Template.Spec.Containers
	if len(containers) != 1 || len(containers[0].Args) == 0 || containers[0].Args[0] != "retention-sweep" {
		return nil, errors.New("the sweeper CronJob's jobTemplate does not run exactly one retention-sweep container")
	}
	if !slices.Contains(containers[0].Args, ErasuresOnlyFlag) {
		containers[0].Args = append(containers[0].Args, ErasuresOnlyFlag)
	}
	// The Job's own selector and pod labels are set by the API server.
	tmpl.Selector, tmpl.ManualSelector = nil, nil
	tmpl.TTLSecondsAfterFinished = ptrTo(int32(ErasureJobTTLSeconds))
	data, err := json.Marshal(tmpl)
	if err != nil {
		return nil, fmt.Errorf("encode the sweeper's jobTemplate: %w", err)
	}
	spec := &batchv1ac.JobSpecApplyConfiguration{}
	if err := json.Unmarshal(data, spec); err != nil {
		return nil, fmt.Errorf("decode the sweeper's jobTemplate: %w", err)
	}
	labels := policyLabels(policy)
	labels[LabelComponent] = "erasure"
	return batchv1ac.Job(ErasureJobName(r, policy), r.Namespace).
		WithLabels(labels).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).WithKind("DataSubjectRequest").
			WithName(r.Name).WithUID(r.UID).WithController(true).WithBlockOwnerDeletion(true)).
		WithSpec(spec), nil
}

func ownedBy(refs []metav1.OwnerReference, policy *v1alpha1.RetentionPolicy) bool {
	for _, o := range refs {
		if o.UID == policy.UID && o.Kind == "RetentionPolicy" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }
