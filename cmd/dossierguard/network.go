package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dossierguard/dossierguard/internal/resources"
)

// networkOptions are the manager's flags for the rules it adds to every
// store's isolation NetworkPolicy: egress to the logbook, ingress to the
// proxies' metrics port.
type networkOptions struct {
	logbookNamespace string
	logbookPodLabels map[string]string
	logbookPort      int
	metricsNSLabels  map[string]string
}

func (o *networkOptions) bindFlags(f *pflag.FlagSet) {
	f.StringVar(&o.logbookNamespace, "logbook-namespace", "", "Namespace of the logbook's pods, for the egress rule of every store's isolation policy (default: the operator's namespace).")
	f.StringToStringVar(&o.logbookPodLabels, "logbook-pod-labels", nil, "Labels of the logbook's pods, such as app.kubernetes.io/component=logbook,app.kubernetes.io/instance=dossierguard: every store's isolation policy lets the workload send to those pods on --logbook-port. Empty adds no such rule (a logbook outside the cluster must then be a dependency of each store). Needs --logbook-url.")
	f.IntVar(&o.logbookPort, "logbook-port", resources.DefaultLogbookPort, "Port of the logbook's pods (the container port, not the Service's).")
	f.StringToStringVar(&o.metricsNSLabels, "proxy-metrics-namespace-labels", nil, "Labels of the namespaces (such as kubernetes.io/metadata.name=monitoring) that may reach the audit proxies' health and metrics port 9901 in every store's workload; empty admits none.")
}

// validate checks the flags against the logbook URL and the operator's
// namespace the webhook flags give.
func (o *networkOptions) validate(logbookURL, operatorNamespace string) error {
	if len(o.logbookPodLabels) > 0 {
		if logbookURL == "" {
			return fmt.Errorf("--logbook-pod-labels needs --logbook-url: without a logbook the proxies ship nowhere and no store may reach it")
		}
		if err := checkLabels("--logbook-pod-labels", o.logbookPodLabels); err != nil {
			return err
		}
		ns := o.namespace(operatorNamespace)
		if ns == "" {
			return fmt.Errorf("--logbook-namespace is required with --logbook-pod-labels when the operator's namespace is unknown")
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--logbook-namespace %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
	}
	if o.logbookPort < 1 || o.logbookPort > 65535 {
		return fmt.Errorf("--logbook-port %d must be between 1 and 65535", o.logbookPort)
	}
	return checkLabels("--proxy-metrics-namespace-labels", o.metricsNSLabels)
}

func (o *networkOptions) namespace(operatorNamespace string) string {
	if o.logbookNamespace != "" {
		return o.logbookNamespace
	}
	return operatorNamespace
}

// extras are the rules for the reconcilers; validate first.
func (o *networkOptions) extras(operatorNamespace string) resources.IsolationExtras {
	var x resources.IsolationExtras
	if len(o.logbookPodLabels) > 0 {
		x.Logbook = &resources.PodPeer{Namespace: o.namespace(operatorNamespace), PodLabels: o.logbookPodLabels, Port: int32(o.logbookPort)}
	}
	if len(o.metricsNSLabels) > 0 {
		x.ProxyMetricsNamespaces = o.metricsNSLabels
	}
	return x
}

// checkLabels names the first label that is not a valid key=value.
func checkLabels(flag string, labels map[string]string) error {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("%s: %q is not a label key: %s", flag, k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			return fmt.Errorf("%s: the value of %s is not a label value: %s", flag, k, strings.Join(errs, "; "))
		}
	}
	return nil
}
