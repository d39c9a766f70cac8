package report

import (
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Lang is the language a report is written in.
type Lang string

// The languages of the reports: Dutch (the default) and English.
const (
	LangNL Lang = "nl"
	LangEN Lang = "en"
)

// Langs lists the languages, the default first.
var Langs = []Lang{LangNL, LangEN}

// ParseLang reads a language code, nl or en.
func ParseLang(s string) (Lang, error) {
	l := Lang(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Langs, l) {
		return "", fmt.Errorf("must be one of %s, not %q", langList(), s)
	}
	return l, nil
}

func langList() string {
	names := make([]string, len(Langs))
	for i, l := range Langs {
		names[i] = string(l)
	}
	return strings.Join(names, ", ")
}

//go:embed lang/*.json
var langFS embed.FS

// catalog holds the strings of every report, per language, from
// lang/<code>.json. Keys are "section.word"; values of the API's
// vocabulary are "prefix.Value" (for the template function tv, which falls
// back to the value itself). Every language has the same keys (a test
// checks it).
var catalog = loadCatalog()

func loadCatalog() map[Lang]map[string]string {
	c := make(map[Lang]map[string]string, len(Langs))
	for _, l := range Langs {
		data, err := langFS.ReadFile("lang/" + string(l) + ".json")
		if err != nil {
			panic(err)
		}
		strs := map[string]string{}
		if err := json.Unmarshal(data, &strs); err != nil {
			panic(fmt.Sprintf("lang/%s.json: %v", l, err))
		}
		c[l] = strs
	}
	return c
}
