package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Path the injector serves on the webhook server.
const Path = "/mutate-v1-pod"

// Injector is the admission handler that adds the audit proxy to pods
// labelled privacy.dossierguard.io/store=<store>.
type Injector struct {
	Client  client.Reader
	Decoder admission.Decoder
	Config  Config
	// OperatorNamespace is never mutated, so that the operator can always
	// start, even when something is wrong with the webhook.
	OperatorNamespace string
}

// Handle mutates one pod. A labelled pod whose store cannot be found is
// refused: a pod of a dossier store must not start unaudited.
func (i *Injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Namespace == i.OperatorNamespace && i.OperatorNamespace != "" {
		return admission.Allowed("the operator's own namespace is not mutated")
	}
	pod := &corev1.Pod{}
	if err := i.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", err))
	}
	name, labelled := pod.Labels[v1alpha1.LabelStore]
	if !labelled {
		return admission.Allowed("not a dossier store pod")
	}
	if HasSidecar(pod) {
		return admission.Allowed("the audit proxy is already present")
	}
	store := &v1alpha1.DossierStore{}
	if err := i.Client.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: name}, store); err != nil {
		if apierrors.IsNotFound(err) {
			return admission.Denied(fmt.Sprintf("metadata.labels[%s]: DossierStore %q does not exist in namespace %q; a pod of a dossier store must not start without its audit proxy",
				v1alpha1.LabelStore, name, req.Namespace))
		}
		log.FromContext(ctx).Error(err, "Reading the DossierStore for injection failed", "store", name)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("read DossierStore %q", name))
	}
	if store.Spec.Audit == nil || store.Spec.Audit.Identity == nil {
		return admission.Denied(fmt.Sprintf("DossierStore %q has no spec.audit.identity: its audit proxy could not identify any caller and would refuse every request; configure oidc or trustedProxy first", name))
	}
	Inject(pod, store, i.Config)
	patched, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode pod: %w", err))
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, patched)
}
