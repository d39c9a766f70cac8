package auditlog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestGenesis: a writer given a Chain starts the log with a genesis line
// whose hash is the chain id, Verify reports the chain, a continued log keeps
// its id, and a log of another store is not continued.
func TestGenesis(t *testing.T) {
	opts := testOptions(t)
	started := time.Date(2026, 9, 1, 7, 0, 0, 0, time.UTC)
	opts.Chain = &Chain{Store: "wijkteam/dossiers", Pod: "wijkteam-0", Started: started}
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	id := w.ChainID()
	if !isLowerHex(id, 64) {
		t.Fatalf("chain id %q", id)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, opts, 0, 3) // continued
	data := readFile(t, opts.Path)
	lines := splitLines(data)
	if !bytes.Contains(lines[0], []byte(`"type":"genesis","seq":1`)) || hashOf(lines[0]) != id {
		t.Fatalf("first line %s is not the genesis with hash %s", lines[0], id)
	}
	res := mustVerify(t, data)
	if !res.OK || res.ChainID != id || res.Chain == nil || res.Chain.Store != "wijkteam/dossiers" ||
		res.Chain.Pod != "wijkteam-0" || !res.Chain.Started.Equal(started) || !isHexID(res.Chain.Incarnation, 32) || res.Events != 3 {
		t.Fatalf("Verify: %+v chain %+v", res, res.Chain)
	}
	rec, err := ParseRecord(bytes.TrimSuffix(lines[0], []byte("\n")))
	if err != nil || rec.Type != TypeGenesis || rec.Chain.Store != "wijkteam/dossiers" || rec.Hash != id {
		t.Fatalf("ParseRecord: %+v, %v", rec, err)
	}

	w, err = NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if w.ChainID() != id {
		t.Errorf("continued chain id %s, want %s", w.ChainID(), id)
	}
	_ = w.Close()

	other := opts
	other.Chain = &Chain{Store: "jeugd/dossiers", Pod: "p"}
	if _, err := NewWriter(other); err == nil || !strings.Contains(err.Error(), "chain of store wijkteam/dossiers") {
		t.Errorf("continue as another store: %v", err)
	}
	plain := testOptions(t)
	writeEvents(t, plain, 0, 1)
	plain.Chain = opts.Chain
	if _, err := NewWriter(plain); err == nil || !strings.Contains(err.Error(), "no genesis line") {
		t.Errorf("continue a log without genesis as a chain: %v", err)
	}
	for _, c := range []Chain{{Store: "nonamespace", Pod: "p"}, {Store: "a/b", Pod: ""}, {Store: "a/b", Pod: "p", Incarnation: "xyz"}} {
		o := testOptions(t)
		o.Chain = &c
		if _, err := NewWriter(o); err == nil || !strings.Contains(err.Error(), "genesis") {
			t.Errorf("chain %+v: %v, want an error naming the genesis member", c, err)
		}
	}
}

// TestGenesisOnlyFirst: a genesis line anywhere but at seq 1 is malformed.
func TestGenesisOnlyFirst(t *testing.T) {
	opts := testOptions(t)
	opts.Chain = &Chain{Store: "a/b", Pod: "p"}
	writeEvents(t, opts, 0, 2)
	lines := splitLines(readFile(t, opts.Path))
	g := bytes.Replace(lines[0], []byte(`"seq":1,`), []byte(`"seq":2,`), 1)
	lines = append([][]byte{lines[0]}, append([][]byte{g}, lines[1:]...)...)
	rechain(lines, 1)
	res := mustVerify(t, join(lines))
	if res.OK || res.Reason != ReasonMalformed || res.BrokenSeq != 2 {
		t.Fatalf("Verify: %v, want malformed at seq 2", res)
	}
}
