package controllers

import (
	"crypto/sha256"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// How many comparisons of applyChild are remembered, and for how long. A
// store has some 20 children; beyond this many the least recently used are
// forgotten and compared again, which costs time, never a write.
const (
	appliedMemoSize = 64 * 1024
	appliedMemoTTL  = time.Hour
)

// knownApplied remembers the applies known to change nothing (DESIGN.md
// §4.14; cluster-api's internal/util/ssa cache): a child found in the cache
// holding exactly its desired configuration under dossierguard's field
// owner. Finding that out extracts the owned fields from the managed fields
// and decodes them, which was the larger part of a settled store's
// reconcile.
var knownApplied = newApplyMemo(appliedMemoSize, appliedMemoTTL)

// applyMemo remembers (child, resourceVersion, desired configuration)
// triples found in step. The resourceVersion changes with every change of
// the child, its managed fields included, so a remembered triple is the
// answer the comparison would give again; any edit, by anyone, is a new
// resourceVersion and compared afresh.
type applyMemo struct {
	lru *cache.LRUExpireCache
	ttl time.Duration
}

func newApplyMemo(size int, ttl time.Duration) applyMemo {
	return applyMemo{lru: cache.NewLRUExpireCache(size), ttl: ttl}
}

// appliedKey identifies a live object at one resourceVersion and an
// encoded desired configuration.
type appliedKey [sha256.Size]byte

func appliedKeyOf(live client.Object, desired []byte) appliedKey {
	h := sha256.New()
	// Type, identity and version, each ended by a byte no name holds, then
	// the desired configuration.
	_, _ = fmt.Fprintf(h, "%T\x00%s\x00%s\x00%s\x00%s\x00", live, live.GetNamespace(), live.GetName(), live.GetUID(), live.GetResourceVersion())
	_, _ = h.Write(desired)
	var k appliedKey
	copy(k[:], h.Sum(nil))
	return k
}

// holds says whether live, as it is, was found to hold desired.
func (m applyMemo) holds(live client.Object, desired []byte) bool {
	_, ok := m.lru.Get(appliedKeyOf(live, desired))
	return ok
}

// remember records that live, as it is, holds desired.
func (m applyMemo) remember(live client.Object, desired []byte) {
	m.lru.Add(appliedKeyOf(live, desired), struct{}{}, m.ttl)
}
