package controllers

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1 "k8s.io/api/core/v1"

	"github.com/dossierguard/dossierguard/internal/resources"
)

// Options configure every reconciler.
type Options struct {
	// Clock, the real clock when nil.
	Clock clock.PassiveClock
}

// CacheOptions keep the operator cheap: Secrets are cached only when
// dossierguard manages them, never every Secret of the cluster.
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{resources.LabelManagedBy: resources.ManagedByValue})
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: managed},
		},
	}
}

// SetupAll registers every reconciler with the manager.
func SetupAll(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return (&DossierStoreReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("dossierguard"),
		Clock:    opts.Clock,
	}).SetupWithManager(mgr)
}
