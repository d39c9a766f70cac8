package webhook

import (
	ctrl "sigs.k8s.io/controller-runtime"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Register adds the pod webhooks to the manager's webhook server: the
// injector (Path), the pod validator (ValidatePath) and the access guard
// (AccessPath), all with the same Config.
func Register(mgr ctrl.Manager, cfg Config, operatorNamespace string) {
	dec := admission.NewDecoder(mgr.GetScheme())
	srv := mgr.GetWebhookServer()
	srv.Register(Path, &crwebhook.Admission{Handler: &Injector{
		Client: mgr.GetClient(), Decoder: dec, Config: cfg, OperatorNamespace: operatorNamespace}})
	srv.Register(ValidatePath, &crwebhook.Admission{Handler: &PodValidator{
		Client: mgr.GetClient(), Decoder: dec, Config: cfg, OperatorNamespace: operatorNamespace}})
	srv.Register(AccessPath, &crwebhook.Admission{Handler: &AccessGuard{
		Client: mgr.GetClient(), Pods: mgr.GetAPIReader(), Decoder: dec, Config: cfg,
		Recorder: mgr.GetEventRecorder("dossierguard-admission"), OperatorNamespace: operatorNamespace}})
}
