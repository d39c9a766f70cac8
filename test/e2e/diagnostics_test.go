//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Every story that fails leaves its diagnostics.
var _ = AfterEach(func(ctx SpecContext) {
	if CurrentSpecReport().Failed() {
		collectDiagnostics(ctx, CurrentSpecReport().LeafNodeText)
	}
})

// Every story's time goes to timings.txt, as hack/e2e.sh's steps do.
var _ = ReportAfterEach(func(r SpecReport) {
	if cfg.artefacts == "" || (r.State == types.SpecStateSkipped && r.Failure.Message == "") {
		return // a dry run, or a spec the filters left out
	}
	f, err := os.OpenFile(filepath.Join(cfg.artefacts, "timings.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_, _ = fmt.Fprintf(f, "%-8s %5.1fs  %s\n", r.State, r.RunTime.Seconds(), r.FullText())
})

// diagnosticNamespaces are where a failed story looks: the store's, the
// operator's and the suite's own.
func diagnosticNamespaces() []string {
	return []string{storeNamespace, cfg.operatorNamespace, nsPartner, nsExpiring, nsOther, nsEgressPartner}
}

// collectDiagnostics writes what a person needs to see why a story failed
// under artefacts/<story>/: pods, events and NetworkPolicies of the
// namespaces involved, every dossierguard resource, the operator's and the
// audit proxies' logs, and the network plugin's log when it is known. It
// never fails the story itself; what it cannot read it says in the file.
func collectDiagnostics(ctx context.Context, story string) {
	dir := filepath.Join(cfg.artefacts, slug(story))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		GinkgoWriter.Printf("diagnostics: %v\n", err)
		return
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			GinkgoWriter.Printf("diagnostics: %v\n", err)
		}
	}
	var pods, events, policies bytes.Buffer
	for _, ns := range diagnosticNamespaces() {
		list := &corev1.PodList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			fmt.Fprintf(&pods, "### %s: %v\n", ns, err)
			continue
		}
		fmt.Fprintf(&pods, "### pods in %s\n", ns)
		for i := range list.Items {
			describePod(&pods, &list.Items[i])
			writeLogs(ctx, dir, &list.Items[i])
		}
		evs := &corev1.EventList{}
		if err := k8s.List(ctx, evs, client.InNamespace(ns)); err == nil {
			sort.Slice(evs.Items, func(i, j int) bool { return eventTime(&evs.Items[i]) < eventTime(&evs.Items[j]) })
			fmt.Fprintf(&events, "### events in %s\n", ns)
			for _, e := range evs.Items {
				fmt.Fprintf(&events, "%s %s %s/%s %s: %s\n", eventTime(&e), e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
		nps := &networkingv1.NetworkPolicyList{}
		if err := k8s.List(ctx, nps, client.InNamespace(ns)); err == nil {
			for i := range nps.Items {
				nps.Items[i].ManagedFields = nil
				b, _ := yaml.Marshal(&nps.Items[i])
				fmt.Fprintf(&policies, "---\n%s", b)
			}
		}
	}
	write("pods.txt", pods.Bytes())
	write("events.txt", events.Bytes())
	write("networkpolicies.yaml", policies.Bytes())
	write("privacy.yaml", privacyObjects(ctx))
	if cfg.netpolLog != "" {
		if b, err := os.ReadFile(cfg.netpolLog); err == nil {
			write("network-plugin.log", tail(b, 400))
		}
	}
	GinkgoWriter.Printf("diagnostics of %q in %s\n", story, dir)
}

func describePod(w *bytes.Buffer, p *corev1.Pod) {
	fmt.Fprintf(w, "%s phase=%s ip=%s node=%s\n", p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(w, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		state := "running"
		switch {
		case s.State.Waiting != nil:
			state = "waiting: " + s.State.Waiting.Reason + " " + s.State.Waiting.Message
		case s.State.Terminated != nil:
			state = fmt.Sprintf("terminated: %s (exit %d)", s.State.Terminated.Reason, s.State.Terminated.ExitCode)
		}
		fmt.Fprintf(w, "  container %s ready=%t restarts=%d %s\n", s.Name, s.Ready, s.RestartCount, state)
	}
}

// writeLogs keeps the last lines of every container of the pod.
func writeLogs(ctx context.Context, dir string, p *corev1.Pod) {
	var names []string
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		names = append(names, c.Name)
	}
	for _, c := range names {
		b, err := clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c, TailLines: ptr.To[int64](300)}).DoRaw(ctx)
		if err != nil {
			b = []byte(err.Error() + "\n")
		}
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("log-%s-%s-%s.txt", p.Namespace, p.Name, c)), b, 0o644)
	}
}

// privacyObjects is `kubectl get privacy -A -o yaml`, without managed fields.
func privacyObjects(ctx context.Context) []byte {
	var out bytes.Buffer
	for _, list := range []client.ObjectList{
		&v1alpha1.DossierStoreList{}, &v1alpha1.AccessRoleList{}, &v1alpha1.SharingAgreementList{},
		&v1alpha1.RetentionPolicyList{}, &v1alpha1.ProcessingActivityList{}, &v1alpha1.DataSubjectRequestList{},
	} {
		if err := k8s.List(ctx, list); err != nil {
			fmt.Fprintf(&out, "# %T: %v\n", list, err)
			continue
		}
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			o.(client.Object).SetManagedFields(nil)
			return nil
		})
		b, err := yaml.Marshal(list)
		if err != nil {
			fmt.Fprintf(&out, "# %T: %v\n", list, err)
			continue
		}
		fmt.Fprintf(&out, "---\n%s", b)
	}
	return out.Bytes()
}

func eventTime(e *corev1.Event) string {
	t := e.LastTimestamp.Time
	if t.IsZero() {
		t = e.EventTime.Time
	}
	return t.UTC().Format("15:04:05")
}

func tail(b []byte, lines int) []byte {
	all := strings.SplitAfter(string(b), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return []byte(strings.Join(all, ""))
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slug names a story's folder: lower case, dashes, at most 60 characters.
func slug(s string) string {
	s = strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 60 {
		s = strings.TrimRight(s[:60], "-")
	}
	return s
}
