package auditproxy

import (
	"container/list"
	"sync"
	"time"
)

// ttlCache is a least-recently-used cache of bounded size whose entries
// expire. It is safe for concurrent use.
type ttlCache[V any] struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	now   func() time.Time
	ll    *list.List // front is most recently used
	items map[string]*list.Element
}

type cacheEntry[V any] struct {
	key     string
	value   V
	expires time.Time
}

func newTTLCache[V any](size int, ttl time.Duration, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{size: size, ttl: ttl, now: now, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *ttlCache[V]) get(key string) (value V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.items[key]
	if !found {
		return value, false
	}
	e := el.Value.(*cacheEntry[V])
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return value, false
	}
	c.ll.MoveToFront(el)
	return e.value, true
}

// put stores value for the cache's TTL.
func (c *ttlCache[V]) put(key string, value V) { c.putUntil(key, value, time.Time{}) }

// putUntil stores value until the earlier of the cache's TTL and until (the
// zero time meaning no limit of its own).
func (c *ttlCache[V]) putUntil(key string, value V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.now().Add(c.ttl)
	if !until.IsZero() && until.Before(exp) {
		exp = until
	}
	if el, found := c.items[key]; found {
		e := el.Value.(*cacheEntry[V])
		e.value, e.expires = value, exp
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry[V]{key: key, value: value, expires: exp})
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry[V]).key)
	}
}

func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
