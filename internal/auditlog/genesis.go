package auditlog

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TypeGenesis is the type of the first line of a chain that names where it
// comes from (see Chain).
const TypeGenesis = "genesis"

// Chain names the origin of a chain: one incarnation of one audit proxy in
// front of one store. A Writer given a Chain starts a new log with a genesis
// line holding it, so that the chain (and every checkpoint, which signs the
// hash of everything before it) is bound to its store, pod and incarnation.
type Chain struct {
	// Store is the DossierStore, as namespace/name.
	Store string
	// Pod is the name of the pod the proxy runs in.
	Pod string
	// Incarnation tells apart the chains of one pod: 32 lowercase hex
	// digits, not all zero. Empty means a random one.
	Incarnation string
	// Started is when the chain was opened; zero means now.
	Started time.Time
}

// genesisBody holds the members of a genesis line after the header.
type genesisBody struct {
	Time        string `json:"time"`
	Store       string `json:"store"`
	Pod         string `json:"pod"`
	Incarnation string `json:"incarnation"`
}

// genesisLine is a genesis line; canonical form as for eventLine.
type genesisLine struct {
	lineHeader
	genesisBody
	Hash string `json:"hash,omitempty"`
}

// NewIncarnation returns a random incarnation id.
func NewIncarnation() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("auditlog: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// validate checks the members of a genesis line, naming the member and the
// rule.
func (g *genesisBody) validate() error {
	if _, err := time.Parse(TimeLayout, g.Time); err != nil {
		return fmt.Errorf("genesis time must be in the layout %s", TimeLayout)
	}
	ns, name, ok := strings.Cut(g.Store, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return errors.New("genesis store must be namespace/name")
	}
	if err := checkText("genesis store", g.Store, maxIDLen, true); err != nil {
		return err
	}
	if err := checkText("genesis pod", g.Pod, maxIDLen, true); err != nil {
		return err
	}
	if !isHexID(g.Incarnation, 32) {
		return errors.New("genesis incarnation must be 32 lowercase hex digits, not all zero")
	}
	return nil
}

// genesisBodyJSON validates c and returns the body of its genesis line.
func genesisBodyJSON(c *Chain, now func() time.Time) ([]byte, error) {
	t := c.Started
	if t.IsZero() {
		t = now()
	}
	inc := c.Incarnation
	if inc == "" {
		inc = NewIncarnation()
	}
	b := genesisBody{Time: formatTime(t), Store: c.Store, Pod: c.Pod, Incarnation: inc}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("invalid chain: %w", err)
	}
	return json.Marshal(&b)
}
