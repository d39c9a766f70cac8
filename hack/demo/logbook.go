package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/testenv"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// The logbook part of the demo: the store, the pod and the dossier it shows.
const (
	demoDatabase  = "dossierguard_demo"
	demoLoginRole = "demo_logbook"
	demoStoreNS   = "wijkteam"
	demoStoreName = "wijkteam-dossiers"
	demoPod       = "wijkteam-dossier-demo-0"
	demoDossier   = "D-1001"
)

// logbookDemo runs the logbook on the demo's PostgreSQL, one audit proxy of
// the wijkteam store shipping to it, and the audit commands against it.
type logbookDemo struct {
	bin        string // the dossierguard binary
	dir        string // bin/demo/logbook
	kubeconfig string // of the control plane, for the logbook's TokenReviews
	addr       string // where the logbook listens
	pg         *url.URL
	client     client.Client
	procs      []*exec.Cmd
}

// newLogbookDemo reads DEMO_PG_DSN (the server hack/postgres.sh started) and
// DEMO_BIN (the dossierguard binary `make build` wrote).
func newLogbookDemo(c client.Client, stateDir, kubeconfig string) (*logbookDemo, error) {
	dsn, bin := os.Getenv("DEMO_PG_DSN"), os.Getenv("DEMO_BIN")
	if dsn == "" || bin == "" {
		return nil, errors.New("DEMO_PG_DSN and DEMO_BIN are not set: run the demo with `make demo`, which starts PostgreSQL and builds bin/dossierguard")
	}
	pg, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("DEMO_PG_DSN: %w", err)
	}
	dir := filepath.Join(stateDir, "logbook")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "trusted-keys"), 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return &logbookDemo{bin: bin, dir: dir, kubeconfig: kubeconfig, addr: addr, pg: pg, client: c}, nil
}

// proxyConfig is the audit proxy the webhook injects in this installation:
// it ships to the demo's logbook.
func (d *logbookDemo) proxyConfig() webhook.Config {
	return webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true, LogbookURL: "http://" + d.addr,
		LogSizeLimit: webhook.DefaultLogSizeLimit}
}

// show is the logbook part of the demo, printed as the rest.
func (d *logbookDemo) show(ctx context.Context) error {
	step("Starting the logbook on the demo's PostgreSQL: database " + demoDatabase + ", migrated by its owner; the logbook logs in as " +
		demoLoginRole + ", which holds only dossierguard_logbook_ingest, and authenticates every sender with a TokenReview")
	if err := d.prepareDatabase(ctx); err != nil {
		return err
	}
	if err := d.writeTrustedKeys(ctx); err != nil {
		return err
	}
	logbookURL, err := d.startLogbook(ctx)
	if err != nil {
		return err
	}
	step("Requests through the audit proxy of store " + demoStoreNS + "/" + demoStoreName + " (pod " + demoPod +
		"), which presents the pod's projected token; each goes on only once the logbook acknowledged its event")
	proxyURL, stopProxy, err := d.startProxy(ctx, logbookURL)
	if err != nil {
		return err
	}
	request(ctx, proxyURL, "/api/dossiers/"+demoDossier+"/decisions", "j.jansen@voorbeeldstad.nl", "wijkteam-consulenten")
	request(ctx, proxyURL, "/api/dossiers/"+demoDossier+"/finance", "j.jansen@voorbeeldstad.nl", "wijkteam-consulenten")
	request(ctx, proxyURL, "/api/dossiers/D-2002/decisions", "a.bakker@voorbeeldstad.nl", "wijkteam-consulenten")
	step("Stopping the proxy: it writes its final signed checkpoint and ships it")
	if err := stopProxy(); err != nil {
		return fmt.Errorf("the audit proxy: %w (see %s)", err, filepath.Join(d.dir, "audit-proxy.log"))
	}
	step("A sender without the pod's token is refused, and nothing of it is stored")
	forgedSender(ctx, logbookURL)
	d.command(ctx, "audit", "verify", "--logbook", "--store", demoStoreNS+"/"+demoStoreName)
	d.command(ctx, "audit", "query", "--store", demoStoreNS+"/"+demoStoreName, "--dossier", demoDossier,
		"--pseudonym-key", d.rel(filepath.Join(d.dir, "pseudonym.key")))
	return nil
}

// rel is path relative to the repository, where the commands run.
func (d *logbookDemo) rel(path string) string {
	if r, err := filepath.Rel(testenv.RepoRoot(), path); err == nil {
		return r
	}
	return path
}

// pgEnv is the libpq environment of the demo database for user.
func (d *logbookDemo) pgEnv(user string) []string {
	return append(os.Environ(), "PGHOST="+d.pg.Hostname(), "PGPORT="+d.pg.Port(), "PGDATABASE="+demoDatabase,
		"PGUSER="+user, "PGSSLMODE=disable")
}

// prepareDatabase makes a fresh database, migrates it as its owner and
// gives the logbook a login role that holds only the ingest role, as the
// e2e does.
func (d *logbookDemo) prepareDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.pg.String())
	if err != nil {
		return fmt.Errorf("connect to the demo's PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + demoDatabase + " WITH (FORCE)",
		"CREATE DATABASE " + demoDatabase,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if err := d.run(ctx, d.pgEnv("postgres"), "logbook", "migrate"); err != nil {
		return err
	}
	db, err := pgx.Connect(ctx, (&url.URL{Scheme: "postgres", User: url.User("postgres"), Host: d.pg.Host, Path: demoDatabase, RawQuery: "sslmode=disable"}).String())
	if err != nil {
		return err
	}
	defer func() { _ = db.Close(ctx) }()
	_, err = db.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+demoLoginRole+`') THEN CREATE ROLE `+demoLoginRole+` LOGIN; END IF;
	END $$; GRANT dossierguard_logbook_ingest TO `+demoLoginRole)
	return err
}

// writeTrustedKeys copies the public checkpoint keys the operator keeps in
// ConfigMap dossierguard-audit-trust into the logbook's --trust-key-dir, as
// the chart mounts them.
func (d *logbookDemo) writeTrustedKeys(ctx context.Context) error {
	cm := &corev1.ConfigMap{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := d.client.Get(ctx, client.ObjectKey{Namespace: "dossierguard-system", Name: resources.AuditTrustName}, cm)
		if err == nil && hasKeyOf(cm, demoStoreNS+"_"+demoStoreName) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ConfigMap %s holds no key of store %s/%s: %v", resources.AuditTrustName, demoStoreNS, demoStoreName, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, pem := range cm.Data {
		if err := os.WriteFile(filepath.Join(d.dir, "trusted-keys", name), []byte(pem), 0o444); err != nil {
			return err
		}
	}
	return nil
}

func hasKeyOf(cm *corev1.ConfigMap, prefix string) bool {
	for name := range cm.Data {
		if name == prefix+".pem" || strings.HasPrefix(name, prefix+"_") {
			return true
		}
	}
	return false
}

// startLogbook starts `dossierguard logbook` as the ingest-only role and
// waits until it is ready; it returns its URL.
func (d *logbookDemo) startLogbook(ctx context.Context) (string, error) {
	// The logbook authenticates every sender with a TokenReview, here with
	// the demo's kubeconfig (in a cluster: its own ServiceAccount).
	env := append(d.pgEnv(demoLoginRole), "KUBECONFIG="+d.kubeconfig)
	err := d.start(ctx, "logbook.log", env, "logbook", "--listen="+d.addr, "--sender-auth=kubernetes",
		"--trust-key-dir="+filepath.Join(d.dir, "trusted-keys"))
	if err != nil {
		return "", err
	}
	base := "http://" + d.addr
	return base, waitReady(ctx, base+"/readyz")
}

// createWorkloadPod creates the store's workload pod as the webhook admits
// it (its ServiceAccount, the injected proxy with its projected logbook
// token), which no kubelet runs here, and writes the token the kubelet
// would project for it: a TokenRequest bound to the pod, of the logbook's
// audience.
func (d *logbookDemo) createWorkloadPod(ctx context.Context, store *v1alpha1.DossierStore) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: demoStoreNS, Name: store.Spec.Workload.ServiceAccountName}}
	if err := d.client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: demoStoreNS, Name: demoPod, Labels: store.Spec.Workload.Selector.MatchLabels},
		Spec: corev1.PodSpec{ServiceAccountName: sa.Name, Containers: []corev1.Container{{Name: "app", Image: "case-management:demo"}}}}
	webhook.Inject(pod, store, d.proxyConfig())
	if err := d.client.Create(ctx, pod); err != nil {
		return fmt.Errorf("create the workload pod: %w", err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{v1alpha1.LogbookTokenAudience}, ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}}
	if err := d.client.SubResource("token").Create(ctx, sa, tr); err != nil {
		return fmt.Errorf("the pod's logbook token: %w", err)
	}
	return os.WriteFile(filepath.Join(d.dir, "token"), []byte(tr.Status.Token), 0o600)
}

// startProxy starts the wijkteam store's audit proxy as the webhook would
// inject it (its policy document and keys from the store's ConfigMap and
// Secret, --store, --pod-name and --logbook-url), in front of a stand-in
// application, and returns its URL.
func (d *logbookDemo) startProxy(ctx context.Context, logbookURL string) (proxyURL string, stop func() error, err error) {
	store := &v1alpha1.DossierStore{}
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: demoStoreNS, Name: demoStoreName}, store); err != nil {
		return "", nil, err
	}
	policy := &corev1.ConfigMap{}
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: demoStoreNS, Name: resources.AccessPolicyName(store)}, policy); err != nil {
		return "", nil, fmt.Errorf("the store's access policy: %w", err)
	}
	signing, pseudonym := &corev1.Secret{}, &corev1.Secret{}
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: demoStoreNS, Name: resources.AuditSigningName(store)}, signing); err != nil {
		return "", nil, fmt.Errorf("the store's signing keys: %w", err)
	}
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: demoStoreNS, Name: resources.PseudonymName(store)}, pseudonym); err != nil {
		return "", nil, fmt.Errorf("the store's pseudonym key: %w", err)
	}
	// The signing Secret's files as the webhook mounts them (--signing-key-dir).
	signingDir := filepath.Join(d.dir, "signing")
	if err := os.MkdirAll(signingDir, 0o700); err != nil {
		return "", nil, err
	}
	files := map[string][]byte{
		"policy.json":   []byte(policy.Data[accesspolicy.ConfigMapKey]),
		"pseudonym.key": pseudonym.Data[resources.PseudonymKey],
	}
	for name, data := range signing.Data {
		files[filepath.Join("signing", name)] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d.dir, name), data, 0o600); err != nil {
			return "", nil, err
		}
	}
	if err := d.createWorkloadPod(ctx, store); err != nil {
		return "", nil, err
	}
	app, err := startStandInApp()
	if err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	health, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	if err := d.start(ctx, "audit-proxy.log", os.Environ(), "audit-proxy", "--listen="+addr, "--health-listen="+health, "--plain-http",
		"--upstream="+app, "--policy="+filepath.Join(d.dir, "policy.json"), "--audit-log="+filepath.Join(d.dir, "audit.jsonl"),
		"--signing-key-dir="+signingDir, "--pseudonym-key="+filepath.Join(d.dir, "pseudonym.key"),
		"--trusted-proxy-cidrs=127.0.0.1/32", "--store="+demoStoreNS+"/"+demoStoreName, "--pod-name="+demoPod,
		"--logbook-url="+logbookURL, "--logbook-token-file="+filepath.Join(d.dir, "token")); err != nil {
		return "", nil, err
	}
	proxy := d.procs[len(d.procs)-1]
	stop = func() error {
		// SIGTERM: the proxy writes its final checkpoint and waits for the
		// logbook to acknowledge it.
		if err := proxy.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		return proxy.Wait()
	}
	return "http://" + addr, stop, waitReady(ctx, "http://"+health+"/readyz")
}

// forgedSender ships a chain of the store with a made-up token, as anyone
// who reaches the logbook's port could try, and prints the answer.
func forgedSender(ctx context.Context, logbookURL string) {
	body, err := proto.Marshal(auditlog.ExportRequest(demoStoreNS+"/"+demoStoreName, demoPod, strings.Repeat("0", 64), nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, logbookURL+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Authorization", "Bearer made-up-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var st spb.Status
	_ = proto.Unmarshal(data, &st)
	fmt.Printf("  POST /v1/traces for %s/%s with a made-up token: %s: %s\n", demoStoreNS, demoStoreName, resp.Status, st.GetMessage())
}

// request sends one request through the proxy as a member of groups and
// prints what it got.
func request(ctx context.Context, proxyURL, path, user, groups string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxyURL+path, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	req.Header.Set("X-Forwarded-User", user)
	req.Header.Set("X-Forwarded-Groups", groups)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Printf("  GET %s as %s (%s): %v\n", path, user, groups, err)
		return
	}
	_ = resp.Body.Close()
	fmt.Printf("  GET %s as %s (%s): %s\n", path, user, groups, resp.Status)
}

// command prints and runs one dossierguard command as a person would, with
// the libpq variables of the demo database.
func (d *logbookDemo) command(ctx context.Context, args ...string) {
	fmt.Printf("\n$ dossierguard %s\n", joinArgs(args))
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env, cmd.Dir = d.pgEnv("postgres"), testenv.RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	_ = cmd.Run()
}

// run runs a dossierguard command to its end, its output in the demo's log
// folder.
func (d *logbookDemo) run(ctx context.Context, env []string, args ...string) error {
	out, err := os.Create(filepath.Join(d.dir, args[0]+"-"+args[len(args)-1]+".log"))
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dossierguard %s: %w (see %s)", joinArgs(args), err, out.Name())
	}
	return nil
}

// start starts a long-running dossierguard command; stopAll ends it.
func (d *logbookDemo) start(ctx context.Context, logName string, env []string, args ...string) error {
	out, err := os.Create(filepath.Join(d.dir, logName))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return err
	}
	d.procs = append(d.procs, cmd)
	return nil
}

// stopAll stops what start started that is still running.
func (d *logbookDemo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		if p.ProcessState != nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
}

// startStandInApp serves every request with 200, as the case-management
// application behind the proxy would; it returns its URL.
func startStandInApp() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"demo":true}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// freeAddr is a loopback address with a port free at this moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url) //nolint:gosec,noctx // a loopback address the demo chose
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer 200 within 30s", url)
}
