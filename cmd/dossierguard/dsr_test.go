package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/report"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

const dsrDossierID = "D-1001"

var dsrKey = []byte("0123456789abcdef0123456789abcdef")

// dsrSecrets must never appear in the access report: the dossier id, its
// pseudonym, the staff's accounts and a break-glass reason.
var dsrSecrets = []string{dsrDossierID, "d-1001", auditproxy.DossierPseudonym(dsrKey, dsrDossierID), "j.jansen@gemeente.example", "kind in gevaar"}

func dsrObjects(reqType v1alpha1.RequestType) []client.Object {
	store := &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "wijkteam-dossiers"},
		Spec: v1alpha1.DossierStoreSpec{Service: v1alpha1.ServiceNeighbourhoodTeam, Organisation: "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryPlan}},
	}
	role := &v1alpha1.AccessRole{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "wijkcoach"},
		Spec:       v1alpha1.AccessRoleSpec{StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"}, Purpose: "Ondersteuning van inwoners"},
	}
	policy := &v1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "bewaartermijn"},
		Spec: v1alpha1.RetentionPolicySpec{StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"}, Schedule: "@daily",
			Rules: []v1alpha1.RetentionRule{{Name: "wmo", Table: "dossiers", Period: "P15Y", Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockEndOfHelp, Column: "einde"}}}},
	}
	req := &v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "inzage-1"},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"}, Type: reqType,
			Dossier:    v1alpha1.DossierPseudonym(auditproxy.DossierPseudonym(dsrKey, dsrDossierID)),
			ReceivedAt: metav1.NewTime(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)),
			Requester:  v1alpha1.Requester{Relation: v1alpha1.RelationSelf}, Subject: v1alpha1.DataSubject{AgeBand: v1alpha1.AgeAdult},
			Handler: "privacy-officer",
		},
		Status: v1alpha1.DataSubjectRequestStatus{DueDate: "2026-12-26"},
	}
	return []client.Object{store, role, policy, req}
}

// fakeLogbook answers as the logbook would, and records the filter it got.
type fakeLogbook struct{ got []logbook.QueryFilter }

func (f *fakeLogbook) query(_ context.Context, _ string, q logbook.QueryFilter) ([]logbook.Access, error) {
	f.got = append(f.got, q)
	return []logbook.Access{
		{Event: auditlog.Event{Time: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), Actor: "j.jansen@gemeente.example", Roles: []string{"wijkcoach"},
			Action: auditlog.ActionRead, Categories: []string{"plan"}, Outcome: auditlog.OutcomeAllowed, DataSubject: q.DataSubject,
			BreakGlass: true, BreakGlassReason: "kind in gevaar"}},
		{Event: auditlog.Event{Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Actor: "ggd", Action: auditlog.ActionExport,
			Categories: []string{"identity"}, Outcome: auditlog.OutcomeAllowed, DataSubject: q.DataSubject,
			Sharing: &auditlog.Sharing{Agreement: "ggd-jgz", Partner: "GGD Voorbeeldregio", LegalBasis: "LegalObligation", LegalReference: "Wpg art. 5"}}},
	}, nil
}

func renderDSR(t *testing.T, reqType v1alpha1.RequestType, id string) (string, *fakeLogbook, error) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(dsrObjects(reqType)...).Build()
	lb := &fakeLogbook{}
	opts := dsrReportOptions{schema: logbook.DefaultSchema, query: lb.query}
	meta := report.Meta{Lang: report.LangNL, GeneratedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Cluster: "test", Namespace: "wijkteam", Version: "test"}
	var buf bytes.Buffer
	err := accessReport(t.Context(), c, opts, "wijkteam", "inzage-1", id, dsrKey, meta, &buf)
	return buf.String(), lb, err
}

func TestDSRReport(t *testing.T) {
	html, lb, err := renderDSR(t, v1alpha1.RequestAccess, "d-1001") // ids are pseudonymised in lower case
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.got) != 1 || lb.got[0].Store != "wijkteam/wijkteam-dossiers" || lb.got[0].DataSubject != auditproxy.DossierPseudonym(dsrKey, dsrDossierID) {
		t.Errorf("logbook asked %+v; want the store and the dossier's pseudonym", lb.got)
	}
	for _, w := range []string{"Medewerker van Gemeente Voorbeeldstad", "in de rol wijkcoach", "Verstrekt aan GGD Voorbeeldregio", "Wpg art. 5",
		"Ondersteuning van inwoners", "P15Y", "plan van aanpak", "Autoriteit Persoonsgegevens", "privacy-officer"} {
		if !strings.Contains(html, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	for _, s := range dsrSecrets {
		if strings.Contains(html, s) {
			t.Errorf("report shows %q", s)
		}
	}
}

func TestDSRReportRefuses(t *testing.T) {
	// Another dossier's id: refused, the logbook not asked, nothing written.
	html, lb, err := renderDSR(t, v1alpha1.RequestAccess, "D-1002")
	if err == nil || !strings.Contains(err.Error(), errDossierMismatch.Error()) || html != "" || len(lb.got) != 0 {
		t.Errorf("another dossier: err %v, %d bytes, %d queries; want the mismatch refusal and nothing", err, len(html), len(lb.got))
	}
	if err != nil && strings.Contains(err.Error(), "1002") {
		t.Errorf("the refusal names the id: %v", err)
	}
	// Not an Access request: refused.
	html, lb, err = renderDSR(t, v1alpha1.RequestErasure, dsrDossierID)
	if err == nil || !strings.Contains(err.Error(), "Access request") || html != "" || len(lb.got) != 0 {
		t.Errorf("an Erasure request: err %v, %d bytes; want a refusal", err, len(html))
	}
}

// The access report in a real headless Chromium: it renders with its
// sections, html/template refused nothing, it prints to PDF, and no
// identifier or staff account is in the page. Page, screenshot and PDF are
// kept in bin/test-artefacts/dsr-report/.
func TestDSRReportInChromium(t *testing.T) {
	html, _, err := renderDSR(t, v1alpha1.RequestAccess, dsrDossierID)
	if err != nil {
		t.Fatal(err)
	}
	dir := artefactDir(t, "dsr-report")
	file := dir + "/access.html"
	if err := writeFileAtomic(file, []byte(html)); err != nil {
		t.Fatal(err)
	}
	ctx := chromiumContext(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file), chromedp.WaitReady(chromedp.ID("rights"))); err != nil {
		t.Fatalf("Chromium: open the report: %v", err)
	}
	title := run(t, ctx, chromedp.Title())
	sections := run(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("main > section")).map(s => s.id)`))
	rows := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.accesses tr.access").length`))
	text := run(t, ctx, chromedp.Evaluate[string](`document.body.innerText`))
	outer := run(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	screenshot := run(t, ctx, chromedp.FullScreenshot(100))
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatalf("Chromium: emulate print: %v", err)
	}
	pdf := run(t, ctx, chromedp.PrintToPDF(chromedp.PDFPrintBackground(), chromedp.PDFPreferCSSPageSize()))
	for name, data := range map[string][]byte{"access.png": screenshot, "access.pdf": pdf} {
		if err := writeFileAtomic(dir+"/"+name, data); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("access report, screenshot and PDF in %s", dir)

	if !strings.HasPrefix(title, "Overzicht van uw gegevens") {
		t.Errorf("title %q", title)
	}
	if strings.Join(sections, ",") != "request,categories,accesses,retention,rights" {
		t.Errorf("sections %v", sections)
	}
	if rows != 2 {
		t.Errorf("%d access rows; want 2", rows)
	}
	if strings.Contains(outer, "ZgotmplZ") {
		t.Error("the page holds a value html/template refused (ZgotmplZ)")
	}
	if !bytes.HasPrefix(screenshot, []byte("\x89PNG")) {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(screenshot))
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || pdfPages(pdf) < 2 {
		t.Errorf("printToPDF gave %d bytes, %d pages; want a PDF with the rights on a page of their own", len(pdf), pdfPages(pdf))
	}
	for _, s := range dsrSecrets {
		if strings.Contains(text, s) || strings.Contains(outer, s) {
			t.Errorf("the page shows %q", s)
		}
	}
}
