// Package register writes the register of processing activities (AVG art.
// 30) from the cluster's ProcessingActivities, in the columns of the VNG
// model register: activity, purpose, basis, categories, recipients,
// retention, measures. Recipients and measures come from each activity's
// status, which the operator derives from the agreements and stores that
// serve it.
package register

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/report"
)

// Columns are the register's columns, in order.
var Columns = []string{"activity", "purpose", "basis", "categories", "recipients", "retention", "measures"}

// Row is one activity of the register.
type Row struct {
	Namespace, Name                                                       string
	Activity, Purpose, Basis, Categories, Recipients, Retention, Measures string
}

// Rows turns activities into register rows, sorted by namespace and name.
func Rows(activities []v1alpha1.ProcessingActivity) []Row {
	rows := make([]Row, 0, len(activities))
	for i := range activities {
		a := &activities[i]
		basis := string(a.Spec.LegalBasis)
		if a.Spec.LegalReference != "" {
			basis += ": " + a.Spec.LegalReference
		}
		cats := make([]string, len(a.Spec.DataCategories))
		for j, c := range a.Spec.DataCategories {
			cats[j] = string(c)
		}
		rows = append(rows, Row{
			Namespace: a.Namespace, Name: a.Name,
			Activity:   fmt.Sprintf("%s (%s)", a.Spec.DisplayName, a.ID()),
			Purpose:    a.Spec.Purpose,
			Basis:      basis,
			Categories: fmt.Sprintf("data subjects: %s; data: %s", strings.Join(a.Spec.DataSubjectCategories, ", "), strings.Join(cats, ", ")),
			Recipients: strings.Join(a.Status.Recipients, "; "),
			Retention:  fmt.Sprintf("%s (RetentionPolicy/%s)", a.Spec.Retention.Description, a.Spec.Retention.PolicyRef.Name),
			Measures:   strings.Join(a.Status.Measures, "; "),
		})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Namespace != rows[j].Namespace {
			return rows[i].Namespace < rows[j].Namespace
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

// WriteCSV writes the rows with a header line (RFC 4180).
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write([]string{r.Activity, r.Purpose, r.Basis, r.Categories, r.Recipients, r.Retention, r.Measures}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// HTMLBody is what the register's HTML page renders: the rows, in the
// order of Rows.
type HTMLBody struct {
	Rows []Row
}

var htmlTemplate = mustParse("register.html")

func mustParse(file string) *report.Template {
	t, err := report.ParseTemplate(file)
	if err != nil {
		panic(err)
	}
	return t
}

// WriteHTML writes the rows as one printable HTML page in the layout the
// reports share, in the language of meta, printed on A4 landscape for its
// seven columns. It holds the same rows and columns as WriteCSV. Nothing
// is written when rendering fails.
func WriteHTML(w io.Writer, rows []Row, meta report.Meta) error {
	return htmlTemplate.Execute(w, report.Page{Title: "register.title", Meta: meta, Body: HTMLBody{Rows: rows}, Landscape: true})
}
