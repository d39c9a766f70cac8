package retention

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// periodPattern is the API's pattern for a Period: one positive unit.
var periodPattern = regexp.MustCompile(`^P([1-9][0-9]{0,3})([YMWD])$`)

// ParsePeriod splits an ISO 8601 period with exactly one positive unit
// (P20Y, P6M, P4W, P30D) into years, months and days. A week is 7 days.
func ParsePeriod(p v1alpha1.Period) (years, months, days int, err error) {
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

// Cutoff is now minus the period: now.AddDate(-years, -months, -days). A
// record whose clock is before the cutoff has passed its retention. AddDate
// normalises like Go does: 31 March minus P1M is 3 March (or 2 March in a
// leap year), not the end of February.
//
// An invalid period gives the zero time, before every clock, so that
// nothing is due; ConfigFromSpec and Run reject invalid periods first.
func Cutoff(now time.Time, p v1alpha1.Period) time.Time {
	y, m, d, err := ParsePeriod(p)
	if err != nil {
		return time.Time{}
	}
	return now.AddDate(-y, -m, -d)
}
