package resources

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Retention sweeper settings that are not part of the API.
const (
	SweeperStartingDeadlineSeconds = 600
	SweeperHistoryLimit            = 3
	// SweeperGraceSeconds lets a sweep finish its current batch after SIGTERM.
	SweeperGraceSeconds = 60
)

// SweeperName names the CronJob, ServiceAccount, Role and RoleBinding of a policy.
func SweeperName(p *v1alpha1.RetentionPolicy) string { return p.Name + "-retention" }

// databaseEnv maps the credentials Secret's keys to libpq's variables. Only
// references go into the CronJob; the values never leave the Secret.
var databaseEnv = []struct{ env, key string }{
	{"PGHOST", "host"}, {"PGPORT", "port"}, {"PGDATABASE", "dbname"},
	{"PGUSER", "user"}, {"PGPASSWORD", "password"}, {"PGSSLMODE", "sslmode"},
}

func policyOwner(p *v1alpha1.RetentionPolicy) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).WithKind("RetentionPolicy").
		WithName(p.Name).WithUID(p.UID).WithController(true).WithBlockOwnerDeletion(true)
}

func policyLabels(p *v1alpha1.RetentionPolicy) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedByValue, LabelPartOf: ManagedByValue,
		LabelComponent: "retention-sweeper", v1alpha1.LabelStore: p.Spec.StoreRef.Name,
		v1alpha1.LabelRetentionPolicy: p.Name,
	}
}

// sweeperPodLabels are the sweeper pod's: without the store label, which on
// a pod means a workload pod of the store (the webhook would refuse a pod
// its workload selector does not select).
func sweeperPodLabels(p *v1alpha1.RetentionPolicy) map[string]string {
	l := policyLabels(p)
	delete(l, v1alpha1.LabelStore)
	return l
}

// SweeperCronJob runs `dossierguard retention-sweep` on the policy's
// schedule, one run at a time, as a non-root, read-only container.
func SweeperCronJob(p *v1alpha1.RetentionPolicy, image string, maxRunSeconds int64) *batchv1ac.CronJobApplyConfiguration {
	env := []*corev1ac.EnvVarApplyConfiguration{
		corev1ac.EnvVar().WithName("POD_NAMESPACE").WithValueFrom(corev1ac.EnvVarSource().
			WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("metadata.namespace"))),
	}
	for _, e := range databaseEnv {
		ref := corev1ac.SecretKeySelector().WithName(p.Spec.Database.CredentialsSecretName).WithKey(e.key)
		if e.key == "sslmode" || e.key == "port" {
			ref.WithOptional(true)
		}
		env = append(env, corev1ac.EnvVar().WithName(e.env).WithValueFrom(corev1ac.EnvVarSource().WithSecretKeyRef(ref)))
	}
	container := corev1ac.Container().
		WithName("retention-sweep").
		WithImage(image).
		WithImagePullPolicy(corev1.PullIfNotPresent).
		WithArgs("retention-sweep", "--policy="+p.Name).
		WithEnv(env...).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: mustQuantity("50m"), corev1.ResourceMemory: mustQuantity("64Mi")}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: mustQuantity("256Mi")})).
		WithSecurityContext(RestrictedContainerSecurityContext())
	pod := corev1ac.PodSpec().
		WithServiceAccountName(SweeperName(p)).
		WithRestartPolicy(corev1.RestartPolicyNever).
		WithTerminationGracePeriodSeconds(SweeperGraceSeconds).
		WithSecurityContext(RestrictedPodSecurityContext()).
		WithContainers(container)
	cron := batchv1ac.CronJobSpec().
		WithSchedule(p.Spec.Schedule).
		WithSuspend(p.Spec.Suspend).
		WithConcurrencyPolicy(batchv1.ForbidConcurrent).
		WithStartingDeadlineSeconds(SweeperStartingDeadlineSeconds).
		WithSuccessfulJobsHistoryLimit(SweeperHistoryLimit).
		WithFailedJobsHistoryLimit(SweeperHistoryLimit).
		WithJobTemplate(batchv1ac.JobTemplateSpec().
			WithLabels(policyLabels(p)).
			WithSpec(batchv1ac.JobSpec().
				WithBackoffLimit(2).
				WithActiveDeadlineSeconds(maxRunSeconds + SweeperGraceSeconds).
				WithTemplate(corev1ac.PodTemplateSpec().WithLabels(sweeperPodLabels(p)).WithSpec(pod))))
	if p.Spec.TimeZone != "" {
		cron.WithTimeZone(p.Spec.TimeZone)
	}
	return batchv1ac.CronJob(SweeperName(p), p.Namespace).
		WithLabels(policyLabels(p)).
		WithOwnerReferences(policyOwner(p)).
		WithSpec(cron)
}

// SweeperServiceAccount is the identity of the sweeper's pods.
func SweeperServiceAccount(p *v1alpha1.RetentionPolicy) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(SweeperName(p), p.Namespace).
		WithLabels(policyLabels(p)).
		WithOwnerReferences(policyOwner(p)).
		WithAutomountServiceAccountToken(true)
}

// SweeperRole lets the sweeper read its own policy and report its run in
// that policy's status; and, for erasure, read its store and the store's
// pseudonym key, list the namespace's DataSubjectRequests and report an
// erasure in their status. Nothing else.
func SweeperRole(p *v1alpha1.RetentionPolicy) *rbacv1ac.RoleApplyConfiguration {
	group := v1alpha1.GroupVersion.Group
	store := &v1alpha1.DossierStore{}
	store.Name = p.Spec.StoreRef.Name
	return rbacv1ac.Role(SweeperName(p), p.Namespace).
		WithLabels(policyLabels(p)).
		WithOwnerReferences(policyOwner(p)).
		WithRules(
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("retentionpolicies").
				WithResourceNames(p.Name).WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("retentionpolicies/status").
				WithResourceNames(p.Name).WithVerbs("get", "patch"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("dossierstores").
				WithResourceNames(store.Name).WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("secrets").
				WithResourceNames(PseudonymName(store)).WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("datasubjectrequests").
				WithVerbs("list"),
			rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources("datasubjectrequests/status").
				WithVerbs("patch"),
		)
}

// SweeperRoleBinding binds the sweeper's Role to its ServiceAccount.
func SweeperRoleBinding(p *v1alpha1.RetentionPolicy) *rbacv1ac.RoleBindingApplyConfiguration {
	return rbacv1ac.RoleBinding(SweeperName(p), p.Namespace).
		WithLabels(policyLabels(p)).
		WithOwnerReferences(policyOwner(p)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(SweeperName(p))).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(SweeperName(p)).WithNamespace(p.Namespace))
}

// RestrictedPodSecurityContext satisfies the restricted Pod Security Standard.
func RestrictedPodSecurityContext() *corev1ac.PodSecurityContextApplyConfiguration {
	return corev1ac.PodSecurityContext().
		WithRunAsNonRoot(true).
		WithRunAsUser(65532).
		WithRunAsGroup(65532).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
}

// RestrictedContainerSecurityContext satisfies the restricted Pod Security
// Standard with a read-only root filesystem.
func RestrictedContainerSecurityContext() *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithReadOnlyRootFilesystem(true).
		WithRunAsNonRoot(true).
		WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
