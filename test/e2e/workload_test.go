//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The stories on the store's workload: the bare pod test/e2e/wijkteam-app.yaml
// (the demo application or the echo server behind the injected audit proxy),
// reached through the break-glass responder's port-forward, as a person
// with kubectl would.

const (
	appPodName   = "e2e-wijkteam-app"
	workloadSA   = "wijkteam-dossier"
	consulent    = "consulent@voorbeeldstad.nl"
	consulenten  = "wijkteam-consulenten"
	auditProxy   = "audit-proxy"
	demoDBName   = "wijkteam-db"
	dbSecretName = "wijkteam-db-credentials"
)

// repoFile is the path of a file of the repository (test/e2e/...).
func repoFile(rel string) string { return filepath.Join(cfg.root, rel) }

// decodeManifests reads a multi-document YAML file into unstructured
// objects, after replacing each key of replace with its value.
func decodeManifests(rel string, replace map[string]string) []*unstructured.Unstructured {
	GinkgoHelper()
	b, err := os.ReadFile(repoFile(rel))
	Expect(err).NotTo(HaveOccurred())
	text := string(b)
	for k, v := range replace {
		text = strings.ReplaceAll(text, k, v)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if err == io.EOF {
			break
		}
		Expect(err).NotTo(HaveOccurred(), "decode %s", rel)
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// fromYAML decodes a manifest into a typed object, refusing unknown fields,
// so that a story reads like the object a person applies.
func fromYAML[T any](manifest string) *T {
	GinkgoHelper()
	var o T
	Expect(yaml.UnmarshalStrict([]byte(manifest), &o)).To(Succeed(), "manifest:\n%s", manifest)
	return &o
}

// appPod returns the workload pod of test/e2e/wijkteam-app.yaml, creating
// it (and its ServiceAccount) when it is not there yet, and waits until it
// is Ready. It stays for the stories after this one; hack/e2e.sh's clean-up
// or the deletion story removes it. The pod must not restart its proxy twice
// while it starts: that is a failure, not a slow start.
func appPod(ctx context.Context) *corev1.Pod {
	GinkgoHelper()
	for _, u := range decodeManifests("test/e2e/wijkteam-app.yaml", map[string]string{"APP_IMAGE": cfg.appImage}) {
		if u.GetKind() == "Pod" && cfg.podFSGroup != "" {
			g, err := strconv.ParseInt(cfg.podFSGroup, 10, 64)
			Expect(err).NotTo(HaveOccurred(), "E2E_POD_FSGROUP: want a number")
			Expect(unstructured.SetNestedField(u.Object, g, "spec", "securityContext", "fsGroup")).To(Succeed())
		}
		err := k8s.Create(ctx, u)
		if !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred(), "create %s %s", u.GetKind(), u.GetName())
		}
	}
	pod := &corev1.Pod{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: appPodName}, pod)).To(Succeed())
		for _, s := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			if s.Name == auditProxy && s.RestartCount >= 2 {
				StopTrying(fmt.Sprintf("the audit-proxy container restarted %d times", s.RestartCount)).Now()
			}
		}
		g.Expect(pod.Status.Conditions).To(ContainElement(And(
			HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))), "pod %s is not Ready", appPodName)
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(),
		"the injected pod %s/%s did not become Ready", storeNamespace, appPodName)
	return pod
}

// containerNames lists the names of a pod's init containers and containers.
func containerNames(pod *corev1.Pod) (init, main []string) {
	for _, c := range pod.Spec.InitContainers {
		init = append(init, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		main = append(main, c.Name)
	}
	return init, main
}

// openWindow lets the break-glass responder port-forward to a store's pod:
// a member of the group sets the justification and the window.
func openWindow(ctx context.Context, pod *corev1.Pod, justification string, d time.Duration) {
	GinkgoHelper()
	fresh := &corev1.Pod{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), fresh)).To(Succeed())
	patch := client.MergeFrom(fresh.DeepCopy())
	if fresh.Annotations == nil {
		fresh.Annotations = map[string]string{}
	}
	fresh.Annotations[v1alpha1.AnnotationBreakGlassJustification] = justification
	fresh.Annotations[v1alpha1.AnnotationBreakGlassUntil] = time.Now().Add(d).UTC().Format(time.RFC3339)
	Expect(responder.Patch(ctx, fresh, patch)).To(Succeed(), "the break-glass responder could not open a window on %s", pod.Name)
}

// forward is a port-forward to one port of a pod, on 127.0.0.1 of this
// machine, as `kubectl port-forward` makes it (websocket, falling back to
// SPDY).
type forward struct {
	port int
	stop chan struct{}
	done chan error
	out  bytes.Buffer
}

// startForward opens a port-forward as the user of config; it returns once
// the local port listens, or the error the API server gave.
func startForward(config *rest.Config, pod string, port int32) (*forward, error) {
	url := clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(storeNamespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(config)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialer(url, config)
	if err != nil {
		return nil, err
	}
	dialer := portforward.NewFallbackDialer(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	f := &forward{stop: make(chan struct{}), done: make(chan error, 1)}
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, f.stop, ready, &f.out, &f.out)
	if err != nil {
		return nil, err
	}
	go func() { f.done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-f.done:
		if err == nil {
			err = fmt.Errorf("port-forward ended before it was ready")
		}
		return nil, err
	case <-time.After(cfg.timeout):
		close(f.stop)
		return nil, fmt.Errorf("port-forward to %s not ready within %s", pod, cfg.timeout)
	}
	ports, err := fw.GetPorts()
	if err != nil {
		close(f.stop)
		return nil, err
	}
	f.port = int(ports[0].Local)
	return f, nil
}

// responderForward is the break-glass responder's port-forward to the
// proxy port of pod, closed when the spec ends.
func responderForward(pod string) *forward {
	GinkgoHelper()
	f, err := startForward(responderConfig, pod, proxyPort)
	Expect(err).NotTo(HaveOccurred(), "the break-glass responder's port-forward to %s", pod)
	DeferCleanup(f.close)
	return f
}

func (f *forward) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
		if err := <-f.done; err != nil {
			GinkgoWriter.Printf("port-forward to %d ended: %v (%s)\n", f.port, err, f.out.String())
		}
	}
}

// proxyClient is an HTTPS client that trusts the store's published bundle
// (ConfigMap <store>-proxy-ca) and nothing else, keeping its connections.
func proxyClient(ctx context.Context) *http.Client {
	GinkgoHelper()
	cm := &corev1.ConfigMap{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeName + "-proxy-ca"}, cm)).To(Succeed())
	ca := []byte(cm.Data["ca.crt"])
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(ca)).To(BeTrue(), "ConfigMap %s/%s-proxy-ca has no ca.crt", storeNamespace, storeName)
	writeArtefact("proxy-ca.crt", ca)
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 1},
	}
}

// reply is one answer of the proxy.
type reply struct {
	code int
	body string
	tls  *tls.ConnectionState
}

// get sends GET url as the person of user and groups (the trusted
// authenticating proxy's headers; none when user is empty) and keeps the
// body as an artefact under name.
func get(c *http.Client, name, url, user, groups string) reply {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	if user != "" {
		req.Header.Set("X-Forwarded-User", user)
		req.Header.Set("X-Forwarded-Groups", groups)
	}
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred(), "GET %s", url)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	writeArtefact(name+".body", b)
	GinkgoWriter.Printf("%s GET %s as %q: %d\n", time.Now().UTC().Format("15:04:05.000"), url, user, resp.StatusCode)
	return reply{code: resp.StatusCode, body: string(b), tls: resp.TLS}
}

// head is the start of a body, for a message.
func head(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

// writeArtefact keeps b under the suite's artefacts (docs/e2e.md).
func writeArtefact(name string, b []byte) {
	GinkgoHelper()
	Expect(os.WriteFile(filepath.Join(cfg.artefacts, name), b, 0o644)).To(Succeed())
}

// auditLog is the audit proxy's log of a pod: its JSON lines
// ({"v":1,"type":...}), kept as an artefact under name.
func auditLog(ctx context.Context, pod, name string) string {
	GinkgoHelper()
	b, err := clientset.CoreV1().Pods(storeNamespace).GetLogs(pod, &corev1.PodLogOptions{Container: auditProxy}).DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred(), "logs of %s/%s", pod, auditProxy)
	writeArtefact("audit-proxy.log", b)
	var lines bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"v":1,"type":`) {
			lines.WriteString(sc.Text() + "\n")
		}
	}
	writeArtefact(name, lines.Bytes())
	return lines.String()
}

// cli runs the dossierguard binary of the image (E2E_CLI) with args, the
// environment plus env, and stdin; it returns the combined output and the
// exit code.
func cli(stdin string, env []string, args ...string) (string, int) {
	GinkgoHelper()
	cmd := exec.Command(cfg.cli, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		Expect(err).To(BeAssignableToTypeOf(exit), "run %s %s", cfg.cli, strings.Join(args, " "))
		return string(out), err.(*exec.ExitError).ExitCode()
	}
	return string(out), 0
}

// verifyArgs are `dossierguard audit verify` with the store's first public
// signing key, allowing the unsigned tail of a proxy that still runs.
func verifyArgs(ctx context.Context) []string {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeName + "-audit-signing"}, s)).To(Succeed())
	Expect(s.Data).To(HaveKey("signing-1.pub"))
	path := filepath.Join(cfg.artefacts, "signing.pub")
	Expect(os.WriteFile(path, s.Data["signing-1.pub"], 0o644)).To(Succeed())
	return []string{"audit", "verify", "--public-key", path, "--allow-unsigned-tail"}
}

// demoDB connects, from this machine, to the demo application's database
// (test/e2e/demodb) at its Service's cluster IP with the password of the
// store's credentials Secret. ok is false when the run has no demo database.
func demoDB(ctx context.Context) (conn *pgx.Conn, ok bool) {
	GinkgoHelper()
	svc := &corev1.Service{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: demoDBName}, svc); apierrors.IsNotFound(err) {
		return nil, false
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: dbSecretName}, s)).To(Succeed())
	dsn := fmt.Sprintf("host=%s port=5432 dbname=postgres user=postgres sslmode=disable connect_timeout=10", svc.Spec.ClusterIP)
	pc, err := pgx.ParseConfig(dsn)
	Expect(err).NotTo(HaveOccurred())
	pc.Password = string(s.Data["password"])
	conn, err = pgx.ConnectConfig(ctx, pc)
	Expect(err).NotTo(HaveOccurred(), "this machine cannot reach the demo database at %s:5432 with its password", svc.Spec.ClusterIP)
	DeferCleanup(func(ctx SpecContext) { _ = conn.Close(ctx) })
	return conn, true
}

// hostPG connects to the throwaway PostgreSQL hack/e2e.sh runs on the pod
// bridge's gateway (E2E_HOST_PG, trust authentication), to database db.
func hostPG(ctx context.Context, db string) *pgx.Conn {
	GinkgoHelper()
	host, port, _ := strings.Cut(cfg.hostPG, ":")
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s dbname=%s user=postgres sslmode=disable connect_timeout=10", host, port, db))
	Expect(err).NotTo(HaveOccurred(), "the throwaway PostgreSQL at %s", cfg.hostPG)
	DeferCleanup(func(ctx SpecContext) { _ = conn.Close(ctx) })
	return conn
}

// rolledOut waits until the Deployment has all its replicas updated and
// available.
func rolledOut(ctx context.Context, namespace, name string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)).To(Succeed())
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		g.Expect(d.Status.ObservedGeneration).To(BeNumerically(">=", d.Generation))
		g.Expect(d.Status.UpdatedReplicas).To(Equal(want))
		g.Expect(d.Status.AvailableReplicas).To(Equal(want))
		g.Expect(d.Status.Replicas).To(Equal(want), "old pods still terminating")
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(), "deploy/%s did not roll out", name)
}

// deleteManifests deletes the objects of a manifest file and waits until
// they are gone.
func deleteManifests(ctx SpecContext, rel string, replace map[string]string) {
	GinkgoHelper()
	for _, u := range decodeManifests(rel, replace) {
		deleteAndWait(ctx, u)
	}
}

// iso is a moment as the API's RFC 3339, whole seconds.
func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// artefact is the path of an artefact.
func artefact(name string) string { return filepath.Join(cfg.artefacts, name) }

var metav1UpdateOptions = metav1.UpdateOptions{}

// drain reads and closes a response's body, so that its connection is kept.
func drain(resp *http.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return err
}
