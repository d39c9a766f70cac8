package compliance

import (
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/retention"
)

// The checks and the sweeper read a period the same way: what the sweeper
// rejects (its cutoff is the zero time) adds nothing here.
func TestAddPeriodAgreesWithTheSweeper(t *testing.T) {
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		period v1alpha1.Period
		want   time.Time
	}{
		{"P5Y", time.Date(2031, 6, 15, 0, 0, 0, 0, time.UTC)},
		{"P4W", time.Date(2026, 7, 13, 0, 0, 0, 0, time.UTC)},
		{"P1Y6M", now}, // two units: once read as P1Y
		{"P05Y", now},  // leading zero: once read as P5Y
		{"P5Y; DROP", now},
		{"P0D", now},
		{"", now},
	} {
		t.Run(string(tt.period), func(t *testing.T) {
			got := AddPeriod(now, tt.period)
			if !got.Equal(tt.want) {
				t.Errorf("AddPeriod(%q) = %s; want %s", tt.period, got, tt.want)
			}
			// P0D is a retention period (the end of the involvement), never
			// a review period.
			if tt.period == "P0D" {
				if retention.Cutoff(now, v1alpha1.RetentionPeriod(tt.period)) != now {
					t.Errorf("retention.Cutoff(P0D) is not now")
				}
				return
			}
			if valid := !got.Equal(now); valid != !retention.Cutoff(now, v1alpha1.RetentionPeriod(tt.period)).IsZero() {
				t.Errorf("AddPeriod and retention.Cutoff disagree on whether %q is valid", tt.period)
			}
		})
	}
}
