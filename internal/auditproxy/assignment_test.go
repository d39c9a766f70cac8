package auditproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPAssignments(t *testing.T) {
	var calls atomic.Int32
	var lastPath atomic.Value
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		lastPath.Store(r.URL.EscapedPath() + "?" + r.URL.RawQuery)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	a, err := NewHTTPAssignments(srv.URL+"/cases/{dossier}/workers?user={user}", nil, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	ok, err := a.Assigned(ctx, "an&role=admin@example.nl", "D 1/../x")
	if !ok || err != nil {
		t.Fatalf("200: %v %v", ok, err)
	}
	if got := lastPath.Load().(string); got != "/cases/D%201%2F..%2Fx/workers?user=an%26role%3Dadmin%40example.nl" {
		t.Errorf("values not escaped: %s", got)
	}
	if ok, _ := a.Assigned(ctx, "an&role=admin@example.nl", "D 1/../x"); !ok || calls.Load() != 1 {
		t.Errorf("answer not cached: %d calls", calls.Load())
	}

	status.Store(http.StatusNotFound)
	if ok, err := a.Assigned(ctx, "bo", "D-2"); ok || err != nil {
		t.Errorf("404: %v %v", ok, err)
	}
	// Size 2: a third answer evicts the least recently used.
	if _, err := a.Assigned(ctx, "cy", "D-3"); err != nil {
		t.Fatal(err)
	}
	if n := a.cache.len(); n != 2 {
		t.Errorf("cache holds %d answers, want at most 2", n)
	}

	for _, code := range []int32{http.StatusInternalServerError, http.StatusUnauthorized, http.StatusFound, http.StatusNoContent} {
		status.Store(code)
		before := calls.Load()
		for range 2 {
			ok, err := a.Assigned(ctx, "dd", "D-4")
			if ok || err == nil {
				t.Errorf("status %d: %v %v, want an error", code, ok, err)
			}
		}
		if calls.Load() != before+2 {
			t.Errorf("status %d: an error was cached", code)
		}
	}

	srv.Close()
	_, err = a.Assigned(ctx, "secret-user", "secret-dossier")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable source: %v (must fail without naming the user or dossier)", err)
	}
}

func TestTTLCacheExpires(t *testing.T) {
	now := time.Unix(0, 0)
	c := newTTLCache[bool](10, time.Second, func() time.Time { return now })
	c.put("k", true)
	if v, ok := c.get("k"); !v || !ok {
		t.Fatal("missing")
	}
	now = now.Add(time.Second)
	if _, ok := c.get("k"); ok {
		t.Error("expired answer served")
	}
	if c.len() != 0 {
		t.Error("expired answer kept")
	}
}

func TestValidateAssignmentURL(t *testing.T) {
	for tmpl, ok := range map[string]bool{
		"https://cases.example/a/{dossier}/{user}":     true,
		"http://127.0.0.1:9000/a?d={dossier}&u={user}": true,
		"https://cases.example/a/{dossier}":            false,
		"ftp://cases.example/{dossier}/{user}":         false,
		"/a/{dossier}/{user}":                          false,
	} {
		if err := ValidateAssignmentURL(tmpl); (err == nil) != ok {
			t.Errorf("%s: %v", tmpl, err)
		}
	}
}
