package retention

import (
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestCutoff(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 15, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		now    time.Time
		period v1alpha1.RetentionPeriod
		want   time.Time
	}{
		{now, "P20Y", time.Date(2006, 6, 15, 10, 30, 0, 0, time.UTC)},
		{now, "P5Y", time.Date(2021, 6, 15, 10, 30, 0, 0, time.UTC)},
		{now, "P6M", time.Date(2025, 12, 15, 10, 30, 0, 0, time.UTC)},
		{now, "P4W", time.Date(2026, 5, 18, 10, 30, 0, 0, time.UTC)},
		{now, "P30D", time.Date(2026, 5, 16, 10, 30, 0, 0, time.UTC)},
		// AddDate normalises: 29 February 2024 minus a year is 1 March 2023.
		{time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "P1Y", time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC)},
		// 31 March minus a month is 3 March (no 31 February).
		{time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC), "P1M", time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)},
		// Calendar arithmetic keeps the wall clock across a DST change.
		{time.Date(2026, 4, 1, 3, 0, 0, 0, ams), "P30D", time.Date(2026, 3, 2, 3, 0, 0, 0, ams)},
		// P0D: due as soon as the involvement has ended.
		{now, "P0D", now},
		// An invalid period: nothing is due.
		{now, "P0Y", time.Time{}},
		{now, "P5X", time.Time{}},
		{now, "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.period)+"@"+tt.now.Format(time.RFC3339), func(t *testing.T) {
			if got := Cutoff(tt.now, tt.period); !got.Equal(tt.want) {
				t.Errorf("Cutoff(%s, %q) = %s; want %s", tt.now, tt.period, got, tt.want)
			}
		})
	}
}
