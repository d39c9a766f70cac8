package retention

import (
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Cutoff is now minus the period (v1alpha1.RetentionPeriod.SubtractFrom). A record
// whose clock is before the cutoff has passed its retention. AddDate
// normalises like Go does: 31 March minus P1M is 3 March (or 2 March in a
// leap year), not the end of February.
//
// An invalid period gives the zero time, before every clock, so that
// nothing is due; ConfigFromSpec and Run reject invalid periods first.
//
// P0D gives now itself: a record is due as soon as its clock event (the end
// of the involvement) has passed.
func Cutoff(now time.Time, p v1alpha1.RetentionPeriod) time.Time {
	cutoff, err := p.SubtractFrom(now)
	if err != nil {
		return time.Time{}
	}
	return cutoff
}
