package v1alpha1

import (
	"strings"
	"testing"
	"time"
)

func TestPeriodParse(t *testing.T) {
	tests := []struct {
		in                  Period
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
		{in: "P5YX", wantErr: true},      // junk after the unit
	}
	for _, tt := range tests {
		t.Run(string(tt.in), func(t *testing.T) {
			y, m, d, err := tt.in.Parse()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Period(%q).Parse() = %d, %d, %d; want an error", tt.in, y, m, d)
				}
				if !strings.Contains(err.Error(), "ISO 8601 period with one positive unit") {
					t.Errorf("error %q does not explain the format", err)
				}
				if _, err := tt.in.AddTo(time.Now()); err == nil {
					t.Error("AddTo accepted it")
				}
				if _, err := tt.in.SubtractFrom(time.Now()); err == nil {
					t.Error("SubtractFrom accepted it")
				}
				return
			}
			if err != nil {
				t.Fatalf("Period(%q).Parse(): %v", tt.in, err)
			}
			if y != tt.years || m != tt.months || d != tt.days {
				t.Errorf("Period(%q).Parse() = %d, %d, %d; want %d, %d, %d", tt.in, y, m, d, tt.years, tt.months, tt.days)
			}
		})
	}
}

func TestPeriodAddToAndSubtractFrom(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		t          time.Time
		period     Period
		plus, less time.Time
	}{
		{time.Date(2026, 6, 15, 10, 30, 0, 0, time.UTC), "P20Y",
			time.Date(2046, 6, 15, 10, 30, 0, 0, time.UTC), time.Date(2006, 6, 15, 10, 30, 0, 0, time.UTC)},
		{time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC), "P6M",
			time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC), time.Date(2025, 12, 15, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC), "P4W",
			time.Date(2026, 7, 13, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 18, 0, 0, 0, 0, time.UTC)},
		// AddDate normalises: there is no 31 February or 29 February 2025.
		{time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), "P1M",
			time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "P1Y",
			time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC)},
		// The wall clock is kept across a DST change.
		{time.Date(2026, 3, 2, 3, 0, 0, 0, ams), "P30D",
			time.Date(2026, 4, 1, 3, 0, 0, 0, ams), time.Date(2026, 1, 31, 3, 0, 0, 0, ams)},
	}
	for _, tt := range tests {
		t.Run(string(tt.period)+"@"+tt.t.Format(time.RFC3339), func(t *testing.T) {
			if got, err := tt.period.AddTo(tt.t); err != nil || !got.Equal(tt.plus) {
				t.Errorf("AddTo = %s, %v; want %s", got, err, tt.plus)
			}
			if got, err := tt.period.SubtractFrom(tt.t); err != nil || !got.Equal(tt.less) {
				t.Errorf("SubtractFrom = %s, %v; want %s", got, err, tt.less)
			}
		})
	}
}

func TestSigningKeyRotationPeriod(t *testing.T) {
	var none *AuditSpec
	if got := none.SigningKeyRotationPeriod(); got != "P1Y" {
		t.Errorf("no audit spec: %q; want P1Y", got)
	}
	if got := (&AuditSpec{}).SigningKeyRotationPeriod(); got != "P1Y" {
		t.Errorf("unset: %q; want P1Y", got)
	}
	if got := (&AuditSpec{SigningKeyRotation: "P90D"}).SigningKeyRotationPeriod(); got != "P90D" {
		t.Errorf("set: %q; want P90D", got)
	}
}
