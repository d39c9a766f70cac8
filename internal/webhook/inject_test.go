package webhook

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestInjectIsIdempotentAndPlainSidecarWorks(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{AppPort: 8080, ProxyPort: 9000},
			Audit: &v1alpha1.AuditSpec{AssignmentURL: "https://cases.local/assigned/{user}/{dossier}",
				ConsentURL: "https://cases.local/consent/{dossier}/{agreement}", ConsentCacheTTL: "10s",
				Identity: &v1alpha1.IdentitySpec{TrustedProxy: &v1alpha1.TrustedProxySpec{CIDRs: []string{"10.0.0.0/24", "10.0.1.0/24"}}}}}}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if !Inject(pod, store, Config{Image: "img"}) {
		t.Fatal("first injection reported no change")
	}
	if Inject(pod, store, Config{Image: "img"}) {
		t.Error("second injection changed the pod")
	}
	if len(pod.Spec.Containers) != 2 || pod.Spec.Containers[1].Name != SidecarName || pod.Spec.Containers[1].RestartPolicy != nil || len(pod.Spec.Volumes) != 6 {
		t.Fatalf("pod %+v", pod.Spec)
	}
	// The proxy (UID 65532, no fsGroup required of the pod) must be able to
	// read its keys, and only the proxy mounts them.
	for _, v := range pod.Spec.Volumes {
		if (v.Name == SigningVolume || v.Name == PseudonymVolume) && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o004 == 0) {
			t.Errorf("keys volume %s mode %o is not readable by a non-root UID without fsGroup", v.Name, *v.Secret.DefaultMode)
		}
	}
	if mounts := len(pod.Spec.Containers[0].VolumeMounts); mounts != 0 {
		t.Errorf("the app container got %d dossierguard mounts; want none", mounts)
	}
	// The proxy's token reaches the proxy alone, and the pod runs as a
	// ServiceAccount (the API server's default when it names none).
	if pod.Spec.ServiceAccountName != "default" {
		t.Errorf("serviceAccountName %q, want default", pod.Spec.ServiceAccountName)
	}
	if !slices.ContainsFunc(pod.Spec.Containers[1].VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == KubeVolume && m.MountPath == KubeDir && m.ReadOnly
	}) {
		t.Errorf("the proxy does not mount %s read-only at %s", KubeVolume, KubeDir)
	}
	want := map[string]bool{"--listen=:9000": true, "--tls-cert-file=/etc/dossierguard/tls/tls.crt": true, "--tls-key-file=/etc/dossierguard/tls/tls.key": true, "--trusted-proxy-cidrs=10.0.0.0/24,10.0.1.0/24": true,
		"--assignment-url=https://cases.local/assigned/{user}/{dossier}":  true,
		"--consent-url=https://cases.local/consent/{dossier}/{agreement}": true, "--consent-cache-ttl=10s": true,
		"--signing-key-dir=/etc/dossierguard/signing": true, "--pseudonym-key=/etc/dossierguard/pseudonym/pseudonym.key": true,
		"--subject-requests=/s": true, "--kube-token-dir=/var/run/dossierguard/kube": true}
	for _, a := range pod.Spec.Containers[1].Args {
		delete(want, a)
	}
	if len(want) != 0 {
		t.Errorf("missing args %v in %v", want, pod.Spec.Containers[1].Args)
	}
}

// The proxy serves TLS from the store's serving certificate unless the store
// opts out explicitly; then it is told to serve plain HTTP, in so many words.
func TestInjectServesTLSUnlessTheStoreOptsOut(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{AppPort: 8080}}}
	tls, volumes := ExpectedProxy(store, Config{Image: "img"})
	secret := ""
	for _, v := range volumes {
		if v.Name == TLSVolume {
			secret = v.Secret.SecretName
		}
	}
	if secret != "s-proxy-tls" || !slices.Contains(tls.Args, "--tls-cert-file=/etc/dossierguard/tls/tls.crt") || slices.Contains(tls.Args, "--plain-http") {
		t.Errorf("by default want TLS from Secret s-proxy-tls; got volume %q, args %v", secret, tls.Args)
	}
	store.Spec.Workload.ProxyTLS = &v1alpha1.ProxyTLSSpec{Mode: v1alpha1.ProxyTLSDisabled, DisabledReason: "Istio mutual TLS"}
	plain, volumes := ExpectedProxy(store, Config{Image: "img"})
	if !slices.Contains(plain.Args, "--plain-http") || slices.ContainsFunc(plain.Args, func(a string) bool { return strings.HasPrefix(a, "--tls-") }) || len(volumes) != 5 {
		t.Errorf("opted out: want --plain-http and no certificate; got args %v, %d volumes", plain.Args, len(volumes))
	}
}

// TestInjectPointsTheProxyAtTheLogbook: with a logbook URL the proxy names
// its store and pod and ships to the logbook; without one it does not.
func TestInjectPointsTheProxyAtTheLogbook(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "dossiers"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{AppPort: 8080}}}
	for _, url := range []string{"", "http://dossierguard-logbook.dossierguard-system:4318"} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		Inject(pod, store, Config{Image: "img", LogbookURL: url})
		c := pod.Spec.Containers[1]
		args := map[string]bool{}
		for _, a := range c.Args {
			args[a] = true
		}
		has := args["--store=wijkteam/dossiers"] && args["--logbook-url="+url] &&
			len(c.Env) == 1 && c.Env[0].Name == "POD_NAME" && c.Env[0].ValueFrom.FieldRef.FieldPath == "metadata.name"
		if has != (url != "") {
			t.Errorf("logbook URL %q: args %v, env %+v", url, c.Args, c.Env)
		}
	}
}
