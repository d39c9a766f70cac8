package v1alpha1

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// periodPattern is the Period's validation rule: one positive unit, at most
// four digits, no leading zero.
var periodPattern = regexp.MustCompile(`^P([1-9][0-9]{0,3})([YMWD])$`)

// Parse splits the period into years, months and days (a week is 7 days).
// It is as strict as the API's validation: anything else, such as P05Y,
// P1Y6M or PT24H, is an error naming the rule.
func (p Period) Parse() (years, months, days int, err error) {
	m := periodPattern.FindStringSubmatch(string(p))
	if m == nil {
		return 0, 0, 0, fmt.Errorf("must be an ISO 8601 period with one positive unit, such as P20Y, P6M, P4W or P30D, got %q", string(p))
	}
	n, err := strconv.Atoi(m[1])
	if err != nil { // unreachable: the pattern allows at most four digits
		return 0, 0, 0, fmt.Errorf("invalid number in period %q: %w", string(p), err)
	}
	switch m[2] {
	case "Y":
		return n, 0, 0, nil
	case "M":
		return 0, n, 0, nil
	case "W":
		return 0, 0, 7 * n, nil
	default: // "D"
		return 0, 0, n, nil
	}
}

// Parse splits the retention period into years, months and days: all zero
// for P0D, otherwise as Period.Parse, with an error naming both forms.
func (p RetentionPeriod) Parse() (years, months, days int, err error) {
	if p == EndOfInvolvement {
		return 0, 0, 0, nil
	}
	y, m, d, err := Period(p).Parse()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("must be P0D (at the end of the involvement) or an ISO 8601 period with one positive unit, such as P20Y, P6M, P4W or P30D, got %q", string(p))
	}
	return y, m, d, nil
}

// AddTo is t plus the retention period (t itself for P0D).
func (p RetentionPeriod) AddTo(t time.Time) (time.Time, error) {
	y, m, d, err := p.Parse()
	if err != nil {
		return time.Time{}, err
	}
	return t.AddDate(y, m, d), nil
}

// SubtractFrom is t minus the retention period (t itself for P0D).
func (p RetentionPeriod) SubtractFrom(t time.Time) (time.Time, error) {
	y, m, d, err := p.Parse()
	if err != nil {
		return time.Time{}, err
	}
	return t.AddDate(-y, -m, -d), nil
}

// AddTo is t plus the period in calendar arithmetic (time.AddDate, which
// keeps the wall clock and normalises: 31 January plus P1M is 3 March, or
// 2 March in a leap year).
func (p Period) AddTo(t time.Time) (time.Time, error) {
	y, m, d, err := p.Parse()
	if err != nil {
		return time.Time{}, err
	}
	return t.AddDate(y, m, d), nil
}

// SubtractFrom is t minus the period, in the same calendar arithmetic.
func (p Period) SubtractFrom(t time.Time) (time.Time, error) {
	y, m, d, err := p.Parse()
	if err != nil {
		return time.Time{}, err
	}
	return t.AddDate(-y, -m, -d), nil
}
