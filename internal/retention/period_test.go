package retention

import (
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in                  v1alpha1.Period
		years, months, days int
		wantErr             bool
	}{
		{in: "P20Y", years: 20},
		{in: "P5Y", years: 5},
		{in: "P1Y", years: 1},
		{in: "P6M", months: 6},
		{in: "P4W", days: 28},
		{in: "P1W", days: 7},
		{in: "P30D", days: 30},
		{in: "P9999D", days: 9999},
		{in: "", wantErr: true},
		{in: "P", wantErr: true},
		{in: "P0Y", wantErr: true},       // not positive
		{in: "P05Y", wantErr: true},      // leading zero
		{in: "P-1Y", wantErr: true},      // negative
		{in: "P1Y6M", wantErr: true},     // two units
		{in: "PT24H", wantErr: true},     // time unit
		{in: "P1H", wantErr: true},       // not a date unit
		{in: "p5y", wantErr: true},       // lower case
		{in: "5Y", wantErr: true},        // no P
		{in: "P10000D", wantErr: true},   // more than four digits
		{in: "P1.5Y", wantErr: true},     // fraction
		{in: " P5Y", wantErr: true},      // space
		{in: "P5Y\n", wantErr: true},     // trailing newline
		{in: "P5Y; DROP", wantErr: true}, // junk
	}
	for _, tt := range tests {
		t.Run(string(tt.in), func(t *testing.T) {
			y, m, d, err := ParsePeriod(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePeriod(%q) = %d, %d, %d; want an error", tt.in, y, m, d)
				}
				if !strings.Contains(err.Error(), "ISO 8601 period with one positive unit") {
					t.Errorf("error %q does not explain the format", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePeriod(%q): %v", tt.in, err)
			}
			if y != tt.years || m != tt.months || d != tt.days {
				t.Errorf("ParsePeriod(%q) = %d, %d, %d; want %d, %d, %d", tt.in, y, m, d, tt.years, tt.months, tt.days)
			}
		})
	}
}

func TestCutoff(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 15, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		now    time.Time
		period v1alpha1.Period
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
		// An invalid period: nothing is due.
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
