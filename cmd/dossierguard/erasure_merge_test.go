package main

import (
	"testing"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestWithErasureRun: a policy's entry is replaced by its newer run, kept in
// policy order, except an Erased proof, which no later run replaces (the
// scheduled run and the operator's erasures-only Job may race on the same
// request; the second finds nothing left and must not wipe the counts).
func TestWithErasureRun(t *testing.T) {
	run := func(policy string, result v1alpha1.ErasureResult, destroyed int64) v1alpha1.ErasureRun {
		return v1alpha1.ErasureRun{Policy: policy, Result: result, Tables: []v1alpha1.ErasureTable{{Destroyed: destroyed}}}
	}
	for _, tc := range []struct {
		name string
		runs []v1alpha1.ErasureRun
		run  v1alpha1.ErasureRun
		want []v1alpha1.ErasureRun
	}{
		{"first entry", nil, run("b", v1alpha1.ErasureErased, 2), []v1alpha1.ErasureRun{run("b", v1alpha1.ErasureErased, 2)}},
		{"in policy order", []v1alpha1.ErasureRun{run("a", v1alpha1.ErasureHeld, 0), run("c", v1alpha1.ErasureHeld, 0)}, run("b", v1alpha1.ErasureErased, 2),
			[]v1alpha1.ErasureRun{run("a", v1alpha1.ErasureHeld, 0), run("b", v1alpha1.ErasureErased, 2), run("c", v1alpha1.ErasureHeld, 0)}},
		{"held, then erased", []v1alpha1.ErasureRun{run("b", v1alpha1.ErasureHeld, 0)}, run("b", v1alpha1.ErasureErased, 1),
			[]v1alpha1.ErasureRun{run("b", v1alpha1.ErasureErased, 1)}},
		{"an Erased proof stays", []v1alpha1.ErasureRun{run("b", v1alpha1.ErasureErased, 2)}, run("b", v1alpha1.ErasureErased, 0),
			[]v1alpha1.ErasureRun{run("b", v1alpha1.ErasureErased, 2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withErasureRun(tc.runs, tc.run)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Policy != tc.want[i].Policy || got[i].Result != tc.want[i].Result || got[i].Tables[0].Destroyed != tc.want[i].Tables[0].Destroyed {
					t.Errorf("entry %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
