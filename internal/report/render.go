package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed templates/*.html templates/*.css
var templateFS embed.FS

// stylesheet is the print and screen stylesheet every report shares.
var stylesheet = mustRead("templates/report.css")

// Page is what the shared layout renders: the report's title (a key of
// the language strings), the facts of its production and the body its
// content template receives. Landscape prints it on A4 landscape pages,
// for a table too wide for portrait (the register's seven columns).
type Page struct {
	Title     string
	Meta      Meta
	Body      any
	Landscape bool
}

// Template is a parsed report: the shared layout with one content
// template. It is safe for concurrent use.
type Template struct {
	tmpl *template.Template
}

// ParseTemplate parses the shared layout with the content template of the
// named file in templates/ (which defines "content"). Other reports of the
// package add their file there and call it the same way.
func ParseTemplate(file string) (*Template, error) {
	t, err := template.New("layout").Funcs(funcs(LangNL)).Option("missingkey=error").
		ParseFS(templateFS, "templates/layout.html", "templates/"+file)
	if err != nil {
		return nil, fmt.Errorf("parse report templates: %w", err)
	}
	return &Template{tmpl: t}, nil
}

// Execute renders the page in its language into w. Nothing is written
// when rendering fails.
func (t *Template) Execute(w io.Writer, page Page) error {
	if _, ok := catalog[page.Meta.Lang]; !ok {
		return fmt.Errorf("render report: unsupported language %q; use %s", page.Meta.Lang, langList())
	}
	tmpl, err := t.tmpl.Clone()
	if err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Funcs(funcs(page.Meta.Lang)).ExecuteTemplate(&buf, "layout", page); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err = buf.WriteTo(w)
	return err
}

var complianceTemplate = must(ParseTemplate("compliance.html"))

// Render writes the compliance report as one HTML document, in the
// language of its Meta.
func Render(w io.Writer, c Compliance) error {
	return complianceTemplate.Execute(w, Page{Title: "compliance.title", Meta: c.Meta, Body: c})
}

// funcs are the template functions, bound to one language.
func funcs(lang Lang) template.FuncMap {
	strs := catalog[lang]
	return template.FuncMap{
		"lang": func() string { return string(lang) },
		"css":  func() template.CSS { return template.CSS(stylesheet) }, //nolint:gosec // the embedded stylesheet, no input
		// t is the string of a key; a key without a string is a template
		// error, so that no report goes out with a hole in it.
		"t": func(key string) (string, error) {
			if s, ok := strs[key]; ok {
				return s, nil
			}
			return "", fmt.Errorf("no %s string for %q", lang, key)
		},
		// tv is the string of a value of the API's vocabulary, or the
		// value itself for one the strings do not know yet.
		"tv": func(prefix, value string) string {
			if s, ok := strs[prefix+"."+value]; ok {
				return s
			}
			return value
		},
		"yesno": func(b bool) string {
			if b {
				return strs["yes"]
			}
			return strs["no"]
		},
		"lower":    strings.ToLower,
		"anchor":   func(parts ...string) string { return strings.Join(parts, "-") },
		"date":     func(t any) string { return formatTime(t, "2006-01-02") },
		"datetime": func(t any) string { return formatTime(t, "2006-01-02 15:04 UTC") },
		"rfc3339":  func(t any) string { return formatTime(t, time.RFC3339) },
	}
}

// formatTime formats a time.Time or *time.Time in UTC; a dash for none.
func formatTime(v any, layout string) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format(layout)
	case *time.Time:
		if t == nil {
			return "—"
		}
		return formatTime(*t, layout)
	default:
		return fmt.Sprint(v)
	}
}

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
