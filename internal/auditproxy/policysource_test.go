package auditproxy

import (
	"os"
	"testing"
)

func TestPolicySourceKeepsTheLastGoodPolicy(t *testing.T) {
	d := newConfigMapDir(t)
	src := NewPolicySource(d.path(), nil)
	if _, err := src.Reload(); err == nil || src.Ready() == nil {
		t.Fatal("a missing file loaded")
	}
	d.writeDoc(t, testDocument())
	if changed, err := src.Reload(); !changed || err != nil || src.Ready() != nil {
		t.Fatalf("first load: %v %v", changed, err)
	}
	first := src.Current()
	if changed, _ := src.Reload(); changed {
		t.Error("unchanged content swapped")
	}

	d.write(t, []byte(`{"version":1,"routes":[{"name":"r","method":"GET","path":"/x","categories":[],"action":"read"}],"roles":[]}`))
	if changed, err := src.Reload(); changed || err == nil || src.Current() != first {
		t.Errorf("a document that cannot be enforced replaced the policy: %v %v", changed, err)
	}
	if err := os.Remove(d.path()); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(); err == nil || src.Current() != first {
		t.Error("a missing file dropped the policy")
	}
}
