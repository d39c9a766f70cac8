package egressgateway

import (
	"fmt"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// NewKubernetesCallers authenticates the workload's pods by TokenReview of
// their projected tokens of audience (v1alpha1.EgressGatewayTokenAudience
// when empty), with the logbook's KubernetesSenders.
func NewKubernetesCallers(cfg *rest.Config, audience string) (*logbook.KubernetesSenders, error) {
	if audience == "" {
		audience = v1alpha1.EgressGatewayTokenAudience
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("egress gateway: Kubernetes client: %w", err)
	}
	return &logbook.KubernetesSenders{Client: c, Audience: audience}, nil
}
