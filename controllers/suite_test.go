package controllers_test

import (
	"context"

	"fmt"
	"go.uber.org/zap/zapcore"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/testenv"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

var (
	env *testenv.Env
	// k8s reads through the manager's cache-less client: what the API server holds.
	k8s       client.Client
	mgrClient client.Client
	fakeClock = &offsetClock{}
	// testCerts is the operator's CA in the test cluster.
	testCerts *webhook.CertManager
	// reports are the compliance reports the manager keeps.
	reports controllers.ReportKinds
)

const operatorNamespace = "dossierguard-system"

// offsetClock is real time plus an offset that tests may step forward, so
// that requeues for real moments (an agreement's window) and jumps in time
// (key rotation) both work.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time                  { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *offsetClock) Step(d time.Duration)            { c.offset.Add(int64(d)) }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Errors only, so that a failing reconcile explains itself.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	var err error
	env, err = testenv.StartWithReportCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	// Both report CRDs are installed, so both kinds of report are kept.
	reports, err = detectReports()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(reports),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "create manager:", err)
		return 1
	}
	// The operator's CA, which signs the audit proxies' serving certificates.
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, "create the operator's namespace:", err)
		return 1
	}
	certDir, err := os.MkdirTemp("", "dossierguard-certs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(certDir) }()
	testCerts = &webhook.CertManager{Client: k8s, Namespace: operatorNamespace, SecretName: "dossierguard-webhook-tls",
		ServiceName: "dossierguard-webhook", WebhookConfigName: "dossierguard-sidecar-injector", CertDir: certDir}
	if err := testCerts.Ensure(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "the operator's CA:", err)
		return 1
	}
	if err := controllers.SetupAll(mgr, controllers.Options{Clock: fakeClock, Certs: testCerts, TrustNamespace: operatorNamespace, Reports: reports, Isolation: testIsolation, EgressTokenReviewRole: testEgressTokenReviewRole}); err != nil {
		fmt.Fprintln(os.Stderr, "set up reconcilers:", err)
		return 1
	}
	mgrClient = mgr.GetClient()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return m.Run()
}

// eventually polls check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %v", timeout, err)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%100000)
	if len(name) > 63 {
		name = name[len(name)-63:]
		name = strings.TrimLeft(name, "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// encryptedClass is a StorageClass whose parameters prove encryption at rest.
func encryptedClass(t *testing.T) *storagev1.StorageClass {
	t.Helper()
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: "encrypted-gp3-"},
		Provisioner: "ebs.csi.aws.com",
		Parameters:  map[string]string{"type": "gp3", "encrypted": "true", "kmsKeyId": "arn:aws:kms:eu-west-1:111122223333:key/demo"},
	}
	if err := k8s.Create(context.Background(), sc); err != nil {
		t.Fatalf("create StorageClass: %v", err)
	}
	return sc
}

// plainClass is a StorageClass with no evidence of encryption.
func plainClass(t *testing.T) *storagev1.StorageClass {
	t.Helper()
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: "local-path-"},
		Provisioner: "rancher.io/local-path",
	}
	if err := k8s.Create(context.Background(), sc); err != nil {
		t.Fatalf("create StorageClass: %v", err)
	}
	return sc
}

func newStore(t *testing.T, namespace, class string, mutate ...func(*v1alpha1.DossierStore)) *v1alpha1.DossierStore {
	t.Helper()
	s := &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: namespace},
		Spec: v1alpha1.DossierStoreSpec{
			Service:        v1alpha1.ServiceYouthAndFamilyCentre,
			Organisation:   "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryPlan},
			Workload: v1alpha1.WorkloadSpec{
				Selector:           metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}},
				ServiceAccountName: "dossier-app",
				AppPort:            8080,
			},
			Storage: v1alpha1.StorageSpec{StorageClassName: class, Size: "10Gi"},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatalf("create store: %v", err)
	}
	return s
}

func getStore(t *testing.T, s *v1alpha1.DossierStore) *v1alpha1.DossierStore {
	t.Helper()
	got := &v1alpha1.DossierStore{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), got); err != nil {
		t.Fatalf("get store: %v", err)
	}
	return got
}

// conditionIs checks a condition's status and reason on a fresh read.
func conditionIs(obj client.Object, conditions func() []metav1.Condition, t string, status metav1.ConditionStatus, reason string) error {
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return err
	}
	c := meta.FindStatusCondition(conditions(), t)
	if c == nil {
		return fmt.Errorf("no %s condition yet", t)
	}
	if c.Status != status || (reason != "" && c.Reason != reason) {
		return fmt.Errorf("%s is %s/%s (%s); want %s/%s", t, c.Status, c.Reason, c.Message, status, reason)
	}
	if c.ObservedGeneration != obj.GetGeneration() {
		return fmt.Errorf("%s observed generation %d, object is at %d", t, c.ObservedGeneration, obj.GetGeneration())
	}
	return nil
}

func storeCondition(s *v1alpha1.DossierStore, t string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		return conditionIs(s, func() []metav1.Condition { return s.Status.Conditions }, t, status, reason)
	}
}

// countingClient counts every write made through a real client.
type countingClient struct {
	client.Client
	n *atomic.Int64
}

func (c countingClient) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	c.n.Add(1)
	return c.Client.Create(ctx, o, opts...)
}

func (c countingClient) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	c.n.Add(1)
	return c.Client.Update(ctx, o, opts...)
}

func (c countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.n.Add(1)
	return c.Client.Patch(ctx, o, p, opts...)
}

func (c countingClient) Apply(ctx context.Context, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.n.Add(1)
	return c.Client.Apply(ctx, o, opts...)
}

func (c countingClient) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	c.n.Add(1)
	return c.Client.Delete(ctx, o, opts...)
}

func (c countingClient) Status() client.SubResourceWriter {
	return countingStatus{SubResourceWriter: c.Client.Status(), n: c.n}
}

type countingStatus struct {
	client.SubResourceWriter
	n *atomic.Int64
}

func (c countingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Update(ctx, o, opts...)
}

func (c countingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Patch(ctx, o, p, opts...)
}

func newRole(t *testing.T, ns, name string, mutate ...func(*v1alpha1.AccessRole)) *v1alpha1.AccessRole {
	t.Helper()
	r := &v1alpha1.AccessRole{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.AccessRoleSpec{
			StoreRef:   v1alpha1.StoreReference{Name: "dossiers"},
			Subjects:   []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: name + "-group"}},
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryContact},
			Actions:    []v1alpha1.Action{v1alpha1.ActionRead},
			Purpose:    "Ondersteuning van het gezin",
		},
	}
	for _, m := range mutate {
		m(r)
	}
	if err := k8s.Create(context.Background(), r); err != nil {
		t.Fatalf("create role: %v", err)
	}
	return r
}

// updateRetrying reads obj afresh, changes it with mutate and updates it,
// again while the update conflicts: the reconcilers write the status (and
// so the resourceVersion) of the objects the tests change at any moment.
func updateRetrying[T client.Object](t *testing.T, obj T, mutate func(T)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return k8s.Update(context.Background(), obj)
	})
	if err != nil {
		t.Fatal(err)
	}
}
