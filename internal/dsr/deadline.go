// Package dsr holds the pure rules of data-subject requests
// (DataSubjectRequest): the deadline in Europe/Amsterdam, where a request
// stands, and which effects the audit proxy enforces. The reconcilers and
// the audit proxy share them, so that the status a privacy officer reads and
// what the proxy refuses follow from the same functions.
package dsr

import (
	"fmt"
	"time"
	_ "time/tzdata" // the image has no zoneinfo; the deadline must not depend on the host

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TimeZone is where the deadlines are reckoned: the days of the Dutch
// services and the families they serve.
const TimeZone = "Europe/Amsterdam"

// Amsterdam is the location of TimeZone.
var Amsterdam = mustLoad(TimeZone)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("time zone %s: %v", name, err))
	}
	return loc
}

// Date is a calendar day in Europe/Amsterdam.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String is the day as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// DateOf is the day of t in Europe/Amsterdam.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Amsterdam).Date()
	return Date{y, m, d}
}

// addMonths adds n months to d; a day the target month lacks becomes its
// last day (31 January plus one month is 28 or 29 February), as Regulation
// (EEC, Euratom) No 1182/71 art. 3(2)(c) reckons periods in months.
func (d Date) addMonths(n int) Date {
	first := time.Date(d.Year, d.Month+time.Month(n), 1, 12, 0, 0, 0, time.UTC)
	last := time.Date(first.Year(), first.Month()+1, 0, 12, 0, 0, 0, time.UTC).Day()
	return Date{first.Year(), first.Month(), min(d.Day, last)}
}

// addDays adds n calendar days to d.
func (d Date) addDays(n int) Date {
	t := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC)
	return Date{t.Year(), t.Month(), t.Day()}
}

// start is the first instant of d in Europe/Amsterdam.
func (d Date) start() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Amsterdam) }

// Deadline is when a request must be decided.
type Deadline struct {
	// Date is the last day to decide, in Europe/Amsterdam.
	Date Date
	// At is the moment the deadline passes: the start of the next day in
	// Europe/Amsterdam (midnight, whatever the UTC offset that night).
	At time.Time
}

// ComputeDeadline is the deadline of a request received at receivedAt, with
// the store's response period (P4W when empty) and an extension of
// extensionMonths (0, 1 or 2; AVG art. 12(3)). The day of receipt does not
// count: a period of weeks or days ends on the day that many days later, a
// period of months on the same day of the month that many months later (or
// that month's last day), and the extension adds its months to the period
// (P1M extended by two is three months from receipt; P4W extended by one is
// four weeks and a month). The period must be one the API admits for a
// store: P1M, or weeks or days within one month.
func ComputeDeadline(receivedAt time.Time, period v1alpha1.Period, extensionMonths int) (Deadline, error) {
	if period == "" {
		period = v1alpha1.DefaultResponsePeriod
	}
	if extensionMonths < 0 || extensionMonths > 2 {
		return Deadline{}, fmt.Errorf("spec.extension.months must be 1 or 2 (AVG art. 12(3)), got %d", extensionMonths)
	}
	years, months, days, err := period.Parse()
	if err != nil {
		return Deadline{}, fmt.Errorf("spec.dataSubjectRights.responsePeriod: %w", err)
	}
	if years > 0 || months > 1 || (months == 1 && days > 0) || days > 28 {
		return Deadline{}, fmt.Errorf("spec.dataSubjectRights.responsePeriod must be at most one month (AVG art. 12(3)): P1M, P1W to P4W, or P1D to P28D, got %s", period)
	}
	d := DateOf(receivedAt)
	if months > 0 {
		d = d.addMonths(months + extensionMonths)
	} else {
		d = d.addDays(days).addMonths(extensionMonths)
	}
	return Deadline{Date: d, At: d.addDays(1).start()}, nil
}
