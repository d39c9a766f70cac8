package main

import (
	"fmt"
	"math"
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"
)

// setGoMemoryLimit sets the Go runtime's memory limit (GOMEMLIMIT) to ratio
// of the container's memory limit (its cgroup's), so that the collector
// runs harder as the heap nears the limit instead of letting it grow to
// twice what is live (GOGC) and the container be killed. A GOMEMLIMIT set
// in the environment wins; a ratio of 0, or no container limit, leaves the
// runtime's default.
func setGoMemoryLimit(ratio float64, log logr.Logger) error {
	if ratio < 0 || ratio > 1 {
		return fmt.Errorf("--go-memory-limit-ratio: %v must be between 0 (off) and 1", ratio)
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		log.Info("Go memory limit from the environment", "GOMEMLIMIT", v)
		return nil
	}
	if ratio == 0 {
		return nil
	}
	limit, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(memlimit.FromCgroup))
	if err != nil || limit <= 0 || limit == math.MaxInt64 {
		// Not in a container, or in one without a memory limit.
		log.Info("No container memory limit found; the Go memory limit is left unset")
		return nil
	}
	log.Info("Go memory limit set from the container's memory limit", "bytes", limit, "ratio", ratio)
	return nil
}
