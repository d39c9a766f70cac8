package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

// chromiumPath finds the browser the report is checked in. There is no
// skipping: without it the test fails and says how to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DOSSIERGUARD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: the HTML report is checked in a real headless Chromium. " +
		"Install Debian's package with 'apt-get install -y chromium' (as .ci/run does), " +
		"or set DOSSIERGUARD_CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// artefactDir is where the test leaves what it saw for people to look at:
// DOSSIERGUARD_TEST_ARTEFACTS, or bin/test-artefacts/ (ignored by git).
func artefactDir(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("DOSSIERGUARD_TEST_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(), "bin", "test-artefacts")
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkInChromium opens the report in a headless Chromium and checks what
// a reader gets: the document parsed with its sections, no value html/template
// had to refuse, print styles that start each store on a page, a screenshot
// (PNG) and a PDF from Page.printToPDF (both kept in the test artefacts),
// and none of the secrets in the page.
func checkInChromium(t *testing.T, html []byte, secrets []string) {
	t.Helper()
	dir := artefactDir(t, "report")
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, html, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := chromiumContext(t)

	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file), chromedp.WaitReady(chromedp.ID("references"))); err != nil {
		t.Fatalf("Chromium: open the report: %v", err)
	}
	title := run(t, ctx, chromedp.Title())
	stores := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("section.store").length`))
	controls := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("section.store table.controls tr.control").length`))
	sections := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("main > section").length`))
	hasSummary := run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("summary") !== null`))
	hasReferences := run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("references") !== null`))
	text := run(t, ctx, chromedp.Evaluate[string](`document.body.innerText`))
	outer := run(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	const storeBreak = `getComputedStyle(document.querySelector("section.store")).breakBefore`
	screenBreak := run(t, ctx, chromedp.Evaluate[string](storeBreak))
	screenshot := run(t, ctx, chromedp.FullScreenshot(100))
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatalf("Chromium: emulate print: %v", err)
	}
	printBreak := run(t, ctx, chromedp.Evaluate[string](storeBreak))
	pdf := run(t, ctx, chromedp.PrintToPDF(chromedp.PDFPrintBackground(), chromedp.PDFPreferCSSPageSize()))

	for name, data := range map[string][]byte{"report.png": screenshot, "report.pdf": pdf} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("report, screenshot and PDF in %s", dir)

	if !strings.HasPrefix(title, "Nalevingsrapport privacymaatregelen") {
		t.Errorf("title %q", title)
	}
	if !hasSummary || !hasReferences || stores < 3 || sections != stores+2+strings.Count(outer, `id="orphans"`) {
		t.Errorf("DOM: summary %v, references %v, %d stores, %d sections; want the summary, each store, the annex", hasSummary, hasReferences, stores, sections)
	}
	if controls < 4*stores {
		t.Errorf("DOM: %d control rows for %d stores", controls, stores)
	}
	// html/template writes ZgotmplZ where it refused an unsafe value.
	if strings.Contains(outer, "ZgotmplZ") {
		t.Error("the page holds a value html/template refused (ZgotmplZ)")
	}
	if screenBreak == "page" || printBreak != "page" {
		t.Errorf("break-before of a store: %q on screen, %q in print; want a new page in print only", screenBreak, printBreak)
	}
	if !bytes.HasPrefix(screenshot, []byte("\x89PNG")) {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(screenshot))
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("printToPDF gave no PDF (%d bytes)", len(pdf))
	}
	// Each store starts a page, and so do the summary and the annex.
	if pages := pdfPages(pdf); pages < stores+2 {
		t.Errorf("the PDF has %d pages; want at least %d (the summary, a page per store, the annex)", pages, stores+2)
	}
	for _, s := range secrets {
		if strings.Contains(text, s) || strings.Contains(outer, s) {
			t.Errorf("the page shows %q", s)
		}
	}
}

// chromiumContext starts a headless Chromium for the test; it ends with
// the test.
func chromiumContext(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to sandbox itself as root (CI runs as root).
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(cancelBrowser)
	return ctx
}

// run runs one action in the browser and fails the test when it fails.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("Chromium: %v", err)
	}
	return v
}

// pdfPages counts the page objects of a PDF as Chromium (Skia) writes it.
func pdfPages(pdf []byte) int {
	return bytes.Count(pdf, []byte("/Type /Page")) - bytes.Count(pdf, []byte("/Type /Pages"))
}
