package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// registerColumnsNL are the register's column headings in Dutch: the
// columns of the VNG model register (activity, purpose, basis, categories,
// recipients, retention, measures), in that order.
var registerColumnsNL = []string{"Verwerkingsactiviteit", "Doel", "Grondslag", "Categorieën", "Ontvangers", "Bewaartermijn", "Beveiligingsmaatregelen"}

// a4LandscapeContentWidth is the width of an A4 landscape page inside the
// reports' print margins (297 mm - 2 x 14 mm = 269 mm) in CSS pixels (96
// per inch).
const a4LandscapeContentWidth = 269 * 96 * 10 / 254 // 1016

// registerRow is one activity row as Chromium shows it.
type registerRow struct {
	ID    string   `json:"id"`
	Cells []string `json:"cells"`
}

// checkRegisterInChromium opens the register page in a headless Chromium
// and checks what a privacy officer (or the Autoriteit Persoonsgegevens)
// gets: the VNG model register's columns as headings, one row of seven
// cells per activity with its display name, purpose, basis and retention,
// no value html/template refused, no cell wider than an A4 page in print
// (the table fits inside the margins), a PDF from Page.printToPDF with the
// headings on its first page, and none of the secrets (personal data, raw
// identifiers) in the page. The page, a screenshot and the PDF are kept in
// the test artefacts (register/).
func checkRegisterInChromium(t *testing.T, html []byte, activities []v1alpha1.ProcessingActivity, secrets []string) {
	t.Helper()
	dir := artefactDir(t, "register")
	file := filepath.Join(dir, "register.html")
	if err := os.WriteFile(file, html, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := chromiumContext(t)

	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file), chromedp.WaitReady(chromedp.ID("register"))); err != nil {
		t.Fatalf("Chromium: open the register: %v", err)
	}
	title := run(t, ctx, chromedp.Title())
	headings := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.register thead th")].map(th => th.innerText.trim())`))
	rows := run(t, ctx, chromedp.Evaluate[[]registerRow](`[...document.querySelectorAll("table.register tbody tr.activity")].map(tr => ({id: tr.id, cells: [...tr.cells].map(td => td.innerText.trim())}))`))
	text := run(t, ctx, chromedp.Evaluate[string](`document.body.innerText`))
	outer := run(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	screenshot := run(t, ctx, chromedp.FullScreenshot(100))

	// In print, on the width of an A4 landscape page inside its margins,
	// the table must not be wider than the page: a long register ID or
	// list of measures must wrap, not be cut off.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatalf("Chromium: emulate print: %v", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride,
		emulation.SetDeviceMetricsOverrideParams{Width: a4LandscapeContentWidth, Height: 1000, DeviceScaleFactor: 1}); err != nil {
		t.Fatalf("Chromium: set the page width: %v", err)
	}
	printWidths := run(t, ctx, chromedp.Evaluate[[]float64](`[document.querySelector("table.register").getBoundingClientRect().width, document.documentElement.clientWidth]`))
	rowBreak := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("table.register tr.activity")).breakInside`))
	namedPage := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).page`))
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		t.Fatalf("Chromium: clear the page width: %v", err)
	}
	pdf := run(t, ctx, chromedp.PrintToPDF(chromedp.PDFPrintBackground(), chromedp.PDFPreferCSSPageSize()))

	for name, data := range map[string][]byte{"register.png": screenshot, "register.pdf": pdf} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("register, screenshot and PDF in %s", dir)

	if !strings.HasPrefix(title, "Register van verwerkingsactiviteiten") {
		t.Errorf("title %q", title)
	}
	if !slices.Equal(headings, registerColumnsNL) {
		t.Errorf("column headings %q; want the VNG model register's %q", headings, registerColumnsNL)
	}
	if len(rows) != len(activities) {
		t.Errorf("%d activity rows; want one per ProcessingActivity (%d)", len(rows), len(activities))
	}
	byID := map[string]registerRow{}
	for _, r := range rows {
		if len(r.Cells) != len(registerColumnsNL) {
			t.Errorf("row %s has %d cells; want %d", r.ID, len(r.Cells), len(registerColumnsNL))
		}
		byID[r.ID] = r
	}
	measured := 0
	for _, a := range activities {
		row := byID["activity-"+a.Namespace+"-"+a.Name]
		if len(row.Cells) != len(registerColumnsNL) || !strings.HasPrefix(row.Cells[0], a.Spec.DisplayName+" ("+a.ID()+")") {
			t.Errorf("activity %s/%s (%s) has no row of its own", a.Namespace, a.Name, a.Spec.DisplayName)
			continue
		}
		for i, want := range []string{a.Spec.DisplayName, a.Spec.Purpose, a.Spec.LegalReference, "", "", a.Spec.Retention.Description, ""} {
			if want != "" && !strings.Contains(row.Cells[i], want) {
				t.Errorf("activity %s: column %s shows %q; want it to hold %q", a.Name, registerColumnsNL[i], row.Cells[i], want)
			}
		}
		for _, c := range a.Spec.DataCategories {
			if !strings.Contains(row.Cells[3], string(c)) {
				t.Errorf("activity %s: categories %q lack %s", a.Name, row.Cells[3], c)
			}
		}
		for _, r := range a.Status.Recipients {
			if !strings.Contains(row.Cells[4], r) {
				t.Errorf("activity %s: recipients %q lack %q", a.Name, row.Cells[4], r)
			}
		}
		if len(a.Status.Measures) > 0 {
			measured++
			for _, m := range a.Status.Measures {
				if !strings.Contains(row.Cells[6], m) {
					t.Errorf("activity %s: measures %q lack %q", a.Name, row.Cells[6], m)
				}
			}
		}
		// The page shows register IDs and names, never the objects' UIDs.
		if strings.Contains(outer, string(a.UID)) {
			t.Errorf("the page shows the UID of activity %s", a.Name)
		}
	}
	if measured == 0 {
		t.Error("no activity shows a security measure; the reconciled stores' passing controls are missing")
	}
	// html/template writes ZgotmplZ where it refused an unsafe value.
	if strings.Contains(outer, "ZgotmplZ") {
		t.Error("the page holds a value html/template refused (ZgotmplZ)")
	}
	if len(printWidths) != 2 || printWidths[0] > printWidths[1]+0.5 {
		t.Errorf("in print the register table is %v px wide on a page of %v px; want it within the page", printWidths[0], printWidths[1])
	}
	if rowBreak != "avoid" {
		t.Errorf("break-inside of an activity row in print: %q; want avoid", rowBreak)
	}
	if !bytes.HasPrefix(screenshot, []byte("\x89PNG")) {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(screenshot))
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("printToPDF gave no PDF (%d bytes)", len(pdf))
	}
	if pages := pdfPages(pdf); pages < 1 {
		t.Errorf("the PDF has %d pages", pages)
	}
	// Its pages are A4 landscape (842 x 595 points).
	if namedPage != "wide" {
		t.Errorf("the body's page in print is %q; want the landscape page wide", namedPage)
	}
	for _, box := range pdfMediaBoxes(pdf) {
		if box[0] < 835 || box[0] > 848 || box[1] < 588 || box[1] > 602 {
			t.Errorf("a PDF page is %.0f x %.0f points; want A4 landscape (842 x 595)", box[0], box[1])
		}
	}
	if len(pdfMediaBoxes(pdf)) == 0 {
		t.Error("the PDF names no page size (MediaBox)")
	}
	for _, s := range secrets {
		if strings.Contains(text, s) || strings.Contains(outer, s) {
			t.Errorf("the register shows %q", s)
		}
	}
}

// reconciledActivities waits until the ProcessingActivity reconciler has
// written the status of every activity of the samples, and returns them.
func reconciledActivities(t *testing.T, c client.Client) []v1alpha1.ProcessingActivity {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list v1alpha1.ProcessingActivityList
		if err := c.List(t.Context(), &list); err != nil {
			t.Fatal(err)
		}
		done := len(list.Items) >= 5
		for _, a := range list.Items {
			if a.Status.ObservedGeneration != a.Generation || a.Status.ActivityID == "" || len(a.Status.Compliance) == 0 {
				done = false
			}
		}
		if done {
			return list.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("the samples' %d processing activities were not reconciled within 60s", len(list.Items))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mediaBox is a PDF page's /MediaBox [x0 y0 x1 y1] as Chromium (Skia)
// writes it.
var mediaBox = regexp.MustCompile(`/MediaBox \[\s*([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s*\]`)

// pdfMediaBoxes are the width and height, in points, of every page box of
// a PDF.
func pdfMediaBoxes(pdf []byte) [][2]float64 {
	var out [][2]float64
	for _, m := range mediaBox.FindAllSubmatch(pdf, -1) {
		var v [4]float64
		for i := range v {
			v[i], _ = strconv.ParseFloat(string(m[i+1]), 64)
		}
		out = append(out, [2]float64{v[2] - v[0], v[3] - v[1]})
	}
	return out
}
