package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseReferral(t *testing.T) {
	r, err := parseReferral([]string{"-base", "http://s-egress.ns.svc/a/", "-dossier", "D-1001", "-path", "/referrals/{dossier}", "-categories", "identity, contact"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.url(); got != "http://s-egress.ns.svc/a/referrals/D-1001" {
		t.Errorf("url = %q", got)
	}
	if strings.Join(r.categories, ",") != "identity,contact" || r.tokenFile != DefaultEgressTokenFile {
		t.Errorf("categories %v, token %q", r.categories, r.tokenFile)
	}
	for _, args := range [][]string{
		{"-dossier", "D-1"},
		{"-base", "http://x/a/"},
		{"-base", "http://x/a/", "-dossier", "D-1", "-path", "referrals"},
	} {
		if _, err := parseReferral(args); err == nil {
			t.Errorf("parseReferral(%q) accepted", args)
		}
	}
}

func TestReferralBodyHasOneMemberPerCategory(t *testing.T) {
	row := map[string]string{"name": "Gezin Voorbeeld (fictief)", "contact": "06-00000000", "request": "Hulp bij schulden"}
	b, err := referralBody(row, []string{"identity", "contact"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["identity"]["name"] != row["name"] || got["contact"]["phone"] != row["contact"] {
		t.Errorf("body %s", b)
	}
	if strings.Contains(string(b), row["request"]) {
		t.Errorf("the body holds a category not asked for: %s", b)
	}
	if _, err := referralBody(row, []string{"health"}); err == nil {
		t.Error("a category the demo does not hold was accepted")
	}
}
