package main

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

func TestSetGoMemoryLimitRefusesARatioOutsideZeroToOne(t *testing.T) {
	for _, ratio := range []float64{-0.1, 1.5} {
		err := setGoMemoryLimit(ratio, logr.Discard())
		if err == nil || !strings.Contains(err.Error(), "--go-memory-limit-ratio") {
			t.Errorf("ratio %v: %v; want an error naming --go-memory-limit-ratio", ratio, err)
		}
	}
}

func TestSetGoMemoryLimitLeavesTheLimitAlone(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Run("ratio 0", func(t *testing.T) {
		if err := setGoMemoryLimit(0, logr.Discard()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("GOMEMLIMIT in the environment", func(t *testing.T) {
		t.Setenv("GOMEMLIMIT", "100MiB")
		if err := setGoMemoryLimit(0.9, logr.Discard()); err != nil {
			t.Fatal(err)
		}
	})
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("the Go memory limit changed from %d to %d", before, after)
	}
}
