package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Bounds of a break-glass justification, in characters.
const (
	MinJustificationLen = 10
	MaxJustificationLen = 200
)

// now is the clock of the break-glass checks; tests need no other.
var now = time.Now

// BreakGlass is an open break-glass window on a pod.
type BreakGlass struct {
	Justification string
	Until         time.Time
}

// Digest identifies the justification without repeating it: the first 12
// hex digits of its SHA-256.
func (b BreakGlass) Digest() string {
	sum := sha256.Sum256([]byte(b.Justification))
	return hex.EncodeToString(sum[:])[:12]
}

// ParseBreakGlass reads the break-glass annotations of a pod: nil, nil when
// there are none; an error naming the annotation and the rule when they are
// incomplete, unclean, expired or open too long (more than maxWindow from
// now; DefaultBreakGlassMaxWindow when zero).
func ParseBreakGlass(annotations map[string]string, at time.Time, maxWindow time.Duration) (*BreakGlass, error) {
	if maxWindow <= 0 {
		maxWindow = DefaultBreakGlassMaxWindow
	}
	j, hasJ := annotations[v1alpha1.AnnotationBreakGlassJustification]
	u, hasU := annotations[v1alpha1.AnnotationBreakGlassUntil]
	switch {
	case !hasJ && !hasU:
		return nil, nil
	case !hasJ:
		return nil, fmt.Errorf("metadata.annotations[%s]: required with %s", v1alpha1.AnnotationBreakGlassJustification, v1alpha1.AnnotationBreakGlassUntil)
	case !hasU:
		return nil, fmt.Errorf("metadata.annotations[%s]: required with %s", v1alpha1.AnnotationBreakGlassUntil, v1alpha1.AnnotationBreakGlassJustification)
	}
	if err := checkJustification(j); err != nil {
		return nil, fmt.Errorf("metadata.annotations[%s]: %w", v1alpha1.AnnotationBreakGlassJustification, err)
	}
	until, err := time.Parse(time.RFC3339, u)
	if err != nil {
		return nil, fmt.Errorf("metadata.annotations[%s]: must be an RFC 3339 time such as 2026-12-01T10:30:00Z", v1alpha1.AnnotationBreakGlassUntil)
	}
	if !until.After(at) {
		return nil, fmt.Errorf("metadata.annotations[%s]: the break-glass window closed at %s", v1alpha1.AnnotationBreakGlassUntil, u)
	}
	if until.After(at.Add(maxWindow)) {
		return nil, fmt.Errorf("metadata.annotations[%s]: a break-glass window may stay open at most %s", v1alpha1.AnnotationBreakGlassUntil, maxWindow)
	}
	return &BreakGlass{Justification: strings.TrimSpace(j), Until: until}, nil
}

// checkJustification accepts 10 to 200 printable characters: no control,
// format (bidirectional overrides, zero-width) or line-separator characters.
func checkJustification(j string) error {
	if !utf8.ValidString(j) {
		return fmt.Errorf("must be valid UTF-8")
	}
	n := utf8.RuneCountInString(strings.TrimSpace(j))
	if n < MinJustificationLen || n > MaxJustificationLen {
		return fmt.Errorf("must be %d to %d characters, such as an incident number and what must be done; it must not hold personal data", MinJustificationLen, MaxJustificationLen)
	}
	for _, r := range j {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return fmt.Errorf("must not hold control, formatting or bidirectional characters (found U+%04X)", r)
		}
	}
	return nil
}

// breakGlassGroup is the first configured break-glass group among groups.
func breakGlassGroup(cfg Config, groups []string) string {
	for _, g := range cfg.BreakGlassGroups {
		if slices.Contains(groups, g) {
			return g
		}
	}
	return ""
}

func groupList(cfg Config) string {
	if len(cfg.BreakGlassGroups) == 0 {
		return "none configured: break-glass is disabled"
	}
	return strings.Join(cfg.BreakGlassGroups, ", ")
}

func breakGlassChanged(old, pod *corev1.Pod) bool {
	for _, k := range []string{v1alpha1.AnnotationBreakGlassJustification, v1alpha1.AnnotationBreakGlassUntil} {
		if old.Annotations[k] != pod.Annotations[k] {
			return true
		}
	}
	return false
}

// AccessGuard is the validating handler for kubectl exec, attach,
// port-forward and the API server's proxy (CONNECT on pods/exec,
// pods/attach, pods/portforward, pods/proxy; services/proxy) and
// kubectl debug (UPDATE on pods/ephemeralcontainers). On a store's workload
// pod these reach the application, or the proxy, without the audit proxy in
// between: they are refused unless the requester is in a break-glass group
// and the pod carries an open break-glass window (ParseBreakGlass). The
// proxy's own container is never reachable. Every admitted break-glass
// access is recorded as an Event on the pod and a log line, naming the
// access, the group and a digest of the justification, never the person.
type AccessGuard struct {
	// Client reads DossierStores (cached); Pods reads the pod of a CONNECT
	// request (uncached: pods are not in the manager's cache).
	Client            client.Reader
	Pods              client.Reader
	Decoder           admission.Decoder
	Config            Config
	Recorder          recorder.EventRecorder
	OperatorNamespace string
}

// Handle decides one access.
func (g *AccessGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Namespace == g.OperatorNamespace && g.OperatorNamespace != "" {
		return admission.Allowed("the operator's own namespace is not guarded")
	}
	if req.Operation == admissionv1.Connect && req.Resource.Resource == "services" {
		return g.serviceProxy(ctx, req)
	}
	pod, access, container, done := g.target(ctx, req)
	if done != nil {
		return *done
	}
	store, resp := owningStore(ctx, g.Client, pod)
	if store == nil && resp.Allowed {
		return resp
	}
	if refusal := g.neverAdmitted(pod, store, access, container); refusal != nil {
		return *refusal
	}
	name := req.Name
	if store != nil {
		name = store.Name
	}
	group, window, why := g.breakGlass(req, pod)
	if why != "" {
		return admission.Denied(fmt.Sprintf("%s into a pod of dossier store %q reaches the application without its audit proxy and is refused; break-glass: %s", access, name, why))
	}
	if req.DryRun == nil || !*req.DryRun {
		g.record(ctx, req, pod, access, group, window)
	}
	return admission.Allowed("break-glass")
}

// neverAdmitted refuses what break-glass does not allow either: exec or
// attach into the proxy's container, and an ephemeral container that breaks
// the pod rules (VerifyProxy, CheckPod).
func (g *AccessGuard) neverAdmitted(pod *corev1.Pod, store *v1alpha1.DossierStore, access, container string) *admission.Response {
	if container == SidecarName {
		r := admission.Denied(fmt.Sprintf("%s into the %s container of a dossier store pod is refused: it holds the audit keys; break-glass does not reach it", access, SidecarName))
		return &r
	}
	if access == "debug" && store != nil {
		if problems := append(VerifyProxy(pod, store, g.Config), CheckPod(pod, store, g.Config)...); len(problems) > 0 {
			r := denied(store, problems)
			return &r
		}
	}
	return nil
}

// target is the pod a request reaches (read for CONNECT, decoded for
// ephemeral containers), the kind of access and, for exec and attach, the
// container. A request that needs no decision comes with its response.
func (g *AccessGuard) target(ctx context.Context, req admission.Request) (*corev1.Pod, string, string, *admission.Response) {
	pod := &corev1.Pod{}
	done := func(r admission.Response) (*corev1.Pod, string, string, *admission.Response) { return nil, "", "", &r }
	access, container := req.SubResource, ""
	switch {
	case req.Operation == admissionv1.Connect:
		// pods/proxy names the pod as [scheme:]name[:port].
		name := req.Name
		if _, n, _, ok := utilnet.SplitSchemeNamePort(req.Name); ok {
			name = n
		}
		if err := g.Pods.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: name}, pod); err != nil {
			if apierrors.IsNotFound(err) {
				return done(admission.Allowed("no such pod"))
			}
			log.FromContext(ctx).Error(err, "Reading the pod of an exec, attach or port-forward failed", "pod", klog.KRef(req.Namespace, req.Name))
			return done(admission.Errored(http.StatusInternalServerError, fmt.Errorf("read pod %q", req.Name)))
		}
		if access == "exec" || access == "attach" {
			opts := &corev1.PodExecOptions{}
			if err := g.Decoder.Decode(req, opts); err == nil {
				container = opts.Container
			}
		}
	case req.SubResource == "ephemeralcontainers":
		access = "debug"
		if err := g.Decoder.Decode(req, pod); err != nil {
			return done(admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", err)))
		}
	default:
		return done(admission.Allowed("not guarded"))
	}
	pod.Namespace = req.Namespace
	return pod, access, container, nil
}

// breakGlass is the requester's break-glass group and the pod's open
// window, or why there is no break-glass.
func (g *AccessGuard) breakGlass(req admission.Request, pod *corev1.Pod) (string, *BreakGlass, string) {
	group := breakGlassGroup(g.Config, req.UserInfo.Groups)
	window, err := ParseBreakGlass(pod.Annotations, now(), g.Config.BreakGlassMaxWindow)
	switch {
	case group == "":
		return "", nil, "the requester is in no break-glass group (" + groupList(g.Config) + ")"
	case err != nil:
		return "", nil, err.Error()
	case window == nil:
		return "", nil, fmt.Sprintf("the pod has no break-glass window: set the annotations %s and %s first", v1alpha1.AnnotationBreakGlassJustification, v1alpha1.AnnotationBreakGlassUntil)
	}
	return group, window, ""
}

// record writes an admitted break-glass access as an Event on the pod and a
// log line: the access, the group, the justification's digest and the
// window, never the person (the API server's audit log has them).
func (g *AccessGuard) record(ctx context.Context, req admission.Request, pod *corev1.Pod, access, group string, window *BreakGlass) {
	until := window.Until.UTC().Format(time.RFC3339)
	if g.Recorder != nil {
		g.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, v1alpha1.ReasonBreakGlassAccess, strings.ToUpper(access[:1])+access[1:],
			"break-glass %s admitted under group %s; justification sha256:%s; window until %s", access, group, window.Digest(), until)
	}
	log.FromContext(ctx).Info("Break-glass access admitted", "pod", klog.KObj(pod), "access", access, "group", group,
		"justificationDigest", window.Digest(), "until", until, "admissionUID", string(req.UID))
}

// +kubebuilder:rbac:groups="",resources=services,verbs=get
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list

// serviceProxy refuses the API server's proxy to a Service that selects a
// store's workload pod: it reaches the pods' ports, the application's among
// them, without the audit proxy. There is no break-glass for it; use
// port-forward to one pod under break-glass instead.
func (g *AccessGuard) serviceProxy(ctx context.Context, req admission.Request) admission.Response {
	svc := &corev1.Service{}
	name := req.Name
	if _, n, _, ok := utilnet.SplitSchemeNamePort(req.Name); ok {
		name = n
	}
	if err := g.Pods.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: name}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return admission.Allowed("no such Service")
		}
		log.FromContext(ctx).Error(err, "Reading the Service of a proxy request failed", "service", klog.KRef(req.Namespace, req.Name))
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("read Service %q", req.Name))
	}
	if len(svc.Spec.Selector) == 0 {
		return admission.Allowed("the Service selects no pods")
	}
	pods := &corev1.PodList{}
	if err := g.Pods.List(ctx, pods, client.InNamespace(req.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		log.FromContext(ctx).Error(err, "Listing the pods of a Service failed", "service", klog.KRef(req.Namespace, req.Name))
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("list the pods of Service %q", req.Name))
	}
	for i := range pods.Items {
		store, resp := owningStore(ctx, g.Client, &pods.Items[i])
		if store != nil || !resp.Allowed {
			return admission.Denied(fmt.Sprintf("the API server's proxy to Service %q reaches pods of a dossier store without their audit proxy and is refused; reach the proxy's port over the network, or port-forward to one pod under break-glass", req.Name))
		}
	}
	return admission.Allowed("the Service selects no dossier store pod")
}
