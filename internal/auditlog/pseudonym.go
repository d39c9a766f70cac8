package auditlog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// Pseudonymiser is Pseudonymise for one key, for a request path that makes
// a pseudonym per request: it reuses its HMACs (a new one hashes the key
// and allocates its state every time). It is safe for concurrent use.
type Pseudonymiser struct {
	macs sync.Pool
}

// NewPseudonymiser returns the Pseudonymiser of key (see CheckPseudonymKey).
func NewPseudonymiser(key []byte) *Pseudonymiser {
	key = append([]byte(nil), key...)
	return &Pseudonymiser{macs: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Pseudonym is Pseudonymise(key, subjectID) for the Pseudonymiser's key.
func (p *Pseudonymiser) Pseudonym(subjectID string) string {
	if subjectID == "" {
		return ""
	}
	mac, _ := p.macs.Get().(hash.Hash)
	mac.Reset()
	var in [64]byte
	mac.Write(append(in[:0], subjectID...))
	var sum [sha256.Size]byte
	out := hex.EncodeToString(mac.Sum(sum[:0]))
	p.macs.Put(mac)
	return out
}
