package dsr

import (
	"errors"
	"fmt"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// MaxRetentionExtension is the cap of a store on retention extensions: its
// spec.dataSubjectRights.maxRetentionExtension, P5Y by default.
func MaxRetentionExtension(store *v1alpha1.DossierStore) v1alpha1.Period {
	if store != nil && store.Spec.DataSubjectRights != nil && store.Spec.DataSubjectRights.MaxRetentionExtension != "" {
		return store.Spec.DataSubjectRights.MaxRetentionExtension
	}
	return v1alpha1.DefaultMaxRetentionExtension
}

// ParseDate parses a day written YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("must be a date YYYY-MM-DD, got %q", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// Start is the first instant of d in Europe/Amsterdam.
func (d Date) Start() time.Time { return d.start() }

// addPeriod adds the period to d in calendar arithmetic: years and months
// as addMonths, weeks and days as addDays.
func (d Date) addPeriod(p v1alpha1.Period) (Date, error) {
	years, months, days, err := p.Parse()
	if err != nil {
		return Date{}, err
	}
	return d.addMonths(12*years + months).addDays(days), nil
}

// Extension is the decision of a RetentionExtension request as the sweeper
// honours it: the dossier is kept from From until Ends.
type Extension struct {
	// Requested is spec.retentionExtension.until.
	Requested Date
	// CapDate is the last day the store's cap allows: the day of the
	// decision (or, undecided, of the receipt) plus the cap.
	CapDate Date
	// BeyondCap is true when Requested lies after CapDate.
	BeyondCap bool
	// KeptUntil is the last day the dossier is kept: Requested, or CapDate
	// when the end date lies beyond the cap.
	KeptUntil Date
	// Granted is true when the extension takes effect: a Granted or
	// PartiallyGranted decision on a request that is not being deleted.
	Granted bool
	// From is the decision; zero when undecided.
	From time.Time
	// Ends is the start of the day after KeptUntil, or spec.endedAt when
	// that is earlier.
	Ends time.Time
}

// ErrNotExtension is the error of RetentionExtension for a request of
// another type, or without spec.retentionExtension.
var ErrNotExtension = errors.New("not a RetentionExtension request with spec.retentionExtension")

// RetentionExtension is the extension req decides under the store's cap.
// The error names the field that cannot be used: the end date, or the cap.
func RetentionExtension(req *v1alpha1.DataSubjectRequest, maxExtension v1alpha1.Period) (Extension, error) {
	s := &req.Spec
	if s.Type != v1alpha1.RequestRetentionExtension || s.RetentionExtension == nil {
		return Extension{}, ErrNotExtension
	}
	requested, err := ParseDate(s.RetentionExtension.Until)
	if err != nil {
		return Extension{}, fmt.Errorf("spec.retentionExtension.until: %w", err)
	}
	base := s.ReceivedAt.Time
	if s.Decision != nil {
		base = s.Decision.DecidedAt.Time
	}
	capDate, err := DateOf(base).addPeriod(maxExtension)
	if err != nil {
		return Extension{}, fmt.Errorf("spec.dataSubjectRights.maxRetentionExtension of the store: %w", err)
	}
	e := Extension{Requested: requested, CapDate: capDate, KeptUntil: requested}
	if requested.Start().After(capDate.Start()) {
		e.BeyondCap, e.KeptUntil = true, capDate
	}
	e.Ends = e.KeptUntil.addDays(1).start()
	if s.EndedAt != nil && s.EndedAt.Time.Before(e.Ends) {
		e.Ends = s.EndedAt.Time
	}
	if s.Decision != nil && s.Decision.Outcome != v1alpha1.DecisionRefused && req.DeletionTimestamp.IsZero() {
		e.Granted, e.From = true, s.Decision.DecidedAt.Time
	}
	return e, nil
}

// InEffect reports whether the sweeper keeps the dossier at now.
func (e Extension) InEffect(now time.Time) bool {
	return e.Granted && InWindow(e.From, e.Ends, now)
}

// ErasureNotBefore is the moment from which a granted Erasure request is
// carried out: the start of spec.erasure.notBefore in Europe/Amsterdam;
// zero when the erasure has no such date (it is carried out at once).
func ErasureNotBefore(req *v1alpha1.DataSubjectRequest) (time.Time, error) {
	if req.Spec.Erasure == nil || req.Spec.Erasure.NotBefore == "" {
		return time.Time{}, nil
	}
	d, err := ParseDate(req.Spec.Erasure.NotBefore)
	if err != nil {
		return time.Time{}, fmt.Errorf("spec.erasure.notBefore: %w", err)
	}
	return d.Start(), nil
}

// ErasureDue reports whether a granted erasure may be carried out at now:
// it has no notBefore, or its day has begun. An unreadable date (only an
// API server without the schema lets one through) is never due.
func ErasureDue(req *v1alpha1.DataSubjectRequest, now time.Time) bool {
	from, err := ErasureNotBefore(req)
	return err == nil && !now.Before(from)
}

// KeptDossiers are the pseudonyms of the dossiers of store that granted
// RetentionExtension requests among list keep at now, and the number of
// those requests. The error names the field that cannot be used; the
// sweeper then destroys nothing.
func KeptDossiers(list []v1alpha1.DataSubjectRequest, store string, maxExtension v1alpha1.Period, now time.Time) (map[string]bool, int, error) {
	kept := map[string]bool{}
	n := 0
	for i := range list {
		r := &list[i]
		if r.Spec.Type != v1alpha1.RequestRetentionExtension || r.Spec.StoreRef.Name != store {
			continue
		}
		e, err := RetentionExtension(r, maxExtension)
		if err != nil {
			return nil, 0, fmt.Errorf("DataSubjectRequest %s: %w", r.Name, err)
		}
		if e.InEffect(now) {
			kept[string(r.Spec.Dossier)] = true
			n++
		}
	}
	return kept, n, nil
}

// HasExtensions reports whether list holds a decided RetentionExtension
// request of store, so that the store's cap must be read.
func HasExtensions(list []v1alpha1.DataSubjectRequest, store string) bool {
	for i := range list {
		s := &list[i].Spec
		if s.Type == v1alpha1.RequestRetentionExtension && s.StoreRef.Name == store && s.Decision != nil {
			return true
		}
	}
	return false
}
