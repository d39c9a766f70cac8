package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Paths the handlers serve on the webhook server.
const (
	// Path is the mutating webhook that injects the audit proxy.
	Path = "/mutate-v1-pod"
	// ValidatePath checks every created or updated pod after all mutations.
	ValidatePath = "/validate-v1-pod"
	// AccessPath guards exec, attach, port-forward and ephemeral containers.
	AccessPath = "/validate-v1-pod-access"
)

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=dossierstores,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get

// Injector is the mutating admission handler: it decides which store a pod
// belongs to (OwningStore), refuses what CheckPod finds, and adds the audit
// proxy, or, when the pod already carries a container named audit-proxy,
// admits it only if that is exactly the injected one (VerifyProxy).
type Injector struct {
	// Client reads DossierStores (the manager's cache).
	Client  client.Reader
	Decoder admission.Decoder
	Config  Config
	// OperatorNamespace is never mutated, so that the operator can always
	// start, even when something is wrong with the webhook.
	OperatorNamespace string
}

// Handle mutates one pod. A pod of a store whose proxy cannot be injected is
// refused: a pod of a dossier store must not start unaudited.
func (i *Injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod, skip := admissionPod(i.Decoder, req, i.OperatorNamespace)
	if skip != nil {
		return *skip
	}
	store, resp := owningStore(ctx, i.Client, pod)
	if store == nil {
		return resp
	}
	if store.Spec.Audit == nil || store.Spec.Audit.Identity == nil {
		return admission.Denied(fmt.Sprintf("DossierStore %q has no spec.audit.identity: its audit proxy could not identify any caller and would refuse every request; configure oidc or trustedProxy first", store.Name))
	}
	if HasProxyName(pod) {
		// Resubmitted (such as a dumped, already injected pod): admitted only
		// when it is exactly what this webhook injects now.
		if problems := append(VerifyProxy(pod, store, i.Config), CheckPod(pod, store, i.Config)...); len(problems) > 0 {
			return denied(store, problems)
		}
		return admission.Allowed("the pod carries the audit proxy the webhook injects")
	}
	if problems := CheckPod(pod, store, i.Config); len(problems) > 0 {
		return denied(store, problems)
	}
	Inject(pod, store, i.Config)
	patched, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode pod: %w", err))
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, patched)
}

// PodValidator is the validating handler for pods, created or updated: it
// runs after every mutating webhook and admits a store's pod only with the
// injected audit proxy and nothing that goes around it. An update that
// changes neither labels nor spec is admitted as it is (so that a pod
// admitted before a store's settings changed can still be deleted); the
// break-glass annotations may be set only by a member of a break-glass
// group, and only with a clean justification and a short window.
type PodValidator struct {
	Client            client.Reader
	Decoder           admission.Decoder
	Config            Config
	OperatorNamespace string
}

// Handle validates one pod.
func (v *PodValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod, skip := admissionPod(v.Decoder, req, v.OperatorNamespace)
	if skip != nil {
		return *skip
	}
	old := &corev1.Pod{}
	if req.Operation == admissionv1.Update {
		if err := v.Decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode old pod: %w", err))
		}
	}
	// A break-glass window is opened by a member of a break-glass group, on
	// a running pod: never by whoever creates a pod (a controller copying a
	// template), nor by anyone else.
	if refusal := v.checkBreakGlassWindow(old, pod, req.UserInfo.Groups); refusal != nil {
		return *refusal
	}
	relevant := req.Operation != admissionv1.Update ||
		!equality.Semantic.DeepEqual(old.Labels, pod.Labels) || !equality.Semantic.DeepEqual(old.Spec, pod.Spec)
	if !relevant || !pod.DeletionTimestamp.IsZero() {
		return admission.Allowed("neither labels nor spec changed")
	}
	store, resp := owningStore(ctx, v.Client, pod)
	if store == nil {
		return resp
	}
	if problems := append(VerifyProxy(pod, store, v.Config), CheckPod(pod, store, v.Config)...); len(problems) > 0 {
		return denied(store, problems)
	}
	return admission.Allowed("the pod runs the store's audit proxy")
}

// checkBreakGlassWindow refuses break-glass annotations set (or changed)
// by someone in no break-glass group, or with an unclean justification or
// too long a window. Removing them is always allowed.
func (v *PodValidator) checkBreakGlassWindow(old, pod *corev1.Pod, groups []string) *admission.Response {
	if !breakGlassChanged(old, pod) || pod.Annotations[v1alpha1.AnnotationBreakGlassJustification]+pod.Annotations[v1alpha1.AnnotationBreakGlassUntil] == "" {
		return nil
	}
	if breakGlassGroup(v.Config, groups) == "" {
		r := admission.Denied(fmt.Sprintf("metadata.annotations[%s]: only members of the break-glass groups (%s) may open a break-glass window, on a running pod",
			v1alpha1.AnnotationBreakGlassJustification, groupList(v.Config)))
		return &r
	}
	if _, err := ParseBreakGlass(pod.Annotations, now(), v.Config.BreakGlassMaxWindow); err != nil {
		r := admission.Denied(err.Error())
		return &r
	}
	return nil
}

// admissionPod decodes the request's pod. A request in the operator's own
// namespace (never mutated or checked, so that the operator can always
// start) or one that does not decode comes with the response to give.
func admissionPod(dec admission.Decoder, req admission.Request, operatorNamespace string) (*corev1.Pod, *admission.Response) {
	if req.Namespace == operatorNamespace && operatorNamespace != "" {
		resp := admission.Allowed("the operator's own namespace is not mutated or checked")
		return nil, &resp
	}
	pod := &corev1.Pod{}
	if err := dec.Decode(req, pod); err != nil {
		resp := admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", err))
		return nil, &resp
	}
	pod.Namespace = req.Namespace
	return pod, nil
}

// owningStore lists the namespace's stores and applies OwningStore. A nil
// store comes with the response to give: allowed for a pod of no store,
// denied or errored otherwise.
func owningStore(ctx context.Context, c client.Reader, pod *corev1.Pod) (*v1alpha1.DossierStore, admission.Response) {
	stores := &v1alpha1.DossierStoreList{}
	if err := c.List(ctx, stores, client.InNamespace(pod.Namespace)); err != nil {
		log.FromContext(ctx).Error(err, "Listing the namespace's DossierStores failed", "namespace", pod.Namespace)
		return nil, admission.Errored(http.StatusInternalServerError, fmt.Errorf("list the DossierStores of namespace %q", pod.Namespace))
	}
	store, err := OwningStore(pod, stores.Items)
	if err != nil {
		return nil, admission.Denied(err.Error())
	}
	if store == nil {
		return nil, admission.Allowed("not a dossier store pod")
	}
	return store, admission.Response{}
}

// denied refuses with every problem, each naming its field.
func denied(store *v1alpha1.DossierStore, problems []string) admission.Response {
	return admission.Denied(fmt.Sprintf("pod of DossierStore %q refused: %s", store.Name, strings.Join(problems, "; ")))
}
