package bench

import (
	"reflect"
	"testing"
	"time"
)

func TestParseCPUTime(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{
			name: "a plain command name",
			stat: "4242 (dossierguard) S 1 4242 4242 0 -1 4194560 9519 0 0 0 1234 567 0 0 20 0 14 0 123456 1234567890 12345 18446744073709551615",
			want: 18010 * time.Millisecond,
		},
		{
			name: "a command name with spaces and parentheses",
			stat: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 10 0 0 20 0 1 0 1 1 1",
			want: 150 * time.Millisecond,
		},
		{name: "no command name", stat: "7 a R 1", wantErr: true},
		{name: "cut short", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 5", wantErr: true},
		{name: "not a number", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 10 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUTime(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseCPUTime: error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseCPUTime = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseReconciles(t *testing.T) {
	exposition := `# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="dossierstore",result="error"} 3
controller_runtime_reconcile_total{controller="dossierstore",result="requeue"} 0
controller_runtime_reconcile_total{controller="dossierstore",result="requeue_after"} 250
controller_runtime_reconcile_total{controller="dossierstore",result="success"} 7
controller_runtime_reconcile_total{controller="accessrole",result="requeue_after"} 1e+02
controller_runtime_reconcile_errors_total{controller="dossierstore"} 3
workqueue_adds_total{controller="dossierstore",name="dossierstore"} 400
`
	want := map[string]float64{
		"dossierstore error": 3, "dossierstore requeue_after": 250, "dossierstore success": 7, "accessrole requeue_after": 100,
	}
	if got := parseReconciles(exposition); !reflect.DeepEqual(got, want) {
		t.Errorf("parseReconciles = %v, want %v", got, want)
	}
}

func TestMemoryLimitOf(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		want         int64
		wantErr      bool
	}{
		{name: "the ratio of the limit", values: "manager:\n  goMemoryLimitRatio: 0.9\nresources:\n  limits:\n    memory: 256Mi\n", want: 241591910},
		{name: "off", values: "manager:\n  goMemoryLimitRatio: 0\nresources:\n  limits:\n    memory: 256Mi\n", want: 0},
		{name: "no limit", values: "manager:\n  goMemoryLimitRatio: 0.9\n", wantErr: true},
		{name: "no ratio", values: "resources:\n  limits:\n    memory: 1Gi\n", wantErr: true},
		{name: "not a quantity", values: "manager:\n  goMemoryLimitRatio: 0.9\nresources:\n  limits:\n    memory: lots\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := memoryLimitOf([]byte(tc.values))
			if (err != nil) != tc.wantErr {
				t.Fatalf("memoryLimitOf: error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("memoryLimitOf = %d, want %d", got, tc.want)
			}
		})
	}
}
