package auditlog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// encodingJSONBody is what encoding/json makes of b: the reference
// appendEventBody must equal byte for byte.
func encodingJSONBody(t testing.TB, b *eventBody) []byte {
	t.Helper()
	want, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// awkwardStrings are strings whose JSON encoding escapes something.
var awkwardStrings = []string{
	"", "plain", `quote " and backslash \`, "<script>&amp;</script>", "tab\tnewline\ncr\rbs\bff\f",
	"nul\x00 unit\x1f del\x7f", "bad utf-8 \xff\xfe end", "cut \xe2\x82", "line\u2028para\u2029", "é ß 汉字 🙂",
	"\u2027\u202a", "\xed\xa0\x80 surrogate",
}

func TestEventBodyIsEncodingJSON(t *testing.T) {
	full := eventBody{
		Time: "2026-12-02T03:04:05.123456789Z", DurationNS: 1234567, TraceID: "0af7651916cd43dd8448eb211c80319c",
		OperationID: "b7ad6b7169203331", ParentOperationID: "00f067aa0ba902b7", ProcessingActivityID: "https://register.example.nl/v?a=1&b=<2>",
		DataSubjectID: "ab", Actor: "an@example.nl", Roles: []string{"basis", "intake"}, Action: "read",
		Categories: []string{"identity", "contact"}, Outcome: "allowed", HTTPMethod: "GET", Route: "read-dossier",
		HTTPStatus: 200, BreakGlass: true, BreakGlassReason: "Veilig Thuis: acute melding", Count: 3, ItemsWithheld: 2,
		Agreement: "regenboog", Partner: "Basisschool De Regenboog", LegalBasis: "Consent", LegalReference: "art. 7:457 BW",
		ConsentMode: "PerDossier", Consent: "given", Purpose: "zorg", NoticeRequired: true,
	}
	// A member added to eventBody but not to appendEventBody shows only
	// if the reference case sets it: every member of full is set.
	fv := reflect.ValueOf(full)
	for i := range fv.NumField() {
		if fv.Field(i).IsZero() {
			t.Fatalf("the case \"every member\" leaves eventBody.%s unset", fv.Type().Field(i).Name)
		}
	}
	cases := map[string]eventBody{
		"zero":                      {},
		"staff, lists empty":        {Time: full.Time, TraceID: full.TraceID, OperationID: full.OperationID, Actor: "x", Roles: []string{}, Categories: []string{}, Action: "read", Outcome: "denied", HTTPMethod: "GET"},
		"every member":              full,
		"negative duration, status": {DurationNS: -5, HTTPStatus: 599, Count: -1, ItemsWithheld: -2},
	}
	for i, s := range awkwardStrings {
		b := full
		b.Actor, b.Route, b.BreakGlassReason, b.Partner, b.Purpose = s, s, s, s, s
		b.Roles, b.Categories = []string{s, "x", s}, []string{s}
		cases["awkward "+string(rune('a'+i))] = b
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			got := appendEventBody(nil, &b)
			if want := encodingJSONBody(t, &b); !bytes.Equal(got, want) {
				t.Fatalf("appendEventBody differs from encoding/json:\n got  %s\n want %s", got, want)
			}
		})
	}
}

// FuzzEventBodyIsEncodingJSON holds appendEventBody to encoding/json for
// whatever strings and numbers the fuzzer makes.
//
//	go test -run '^$' -fuzz FuzzEventBodyIsEncodingJSON -fuzztime 60s ./internal/auditlog/
func FuzzEventBodyIsEncodingJSON(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s, s, int64(len(s)), len(s), len(s)%2 == 0)
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64, m int, flag bool) {
		body := eventBody{
			Time: a, DurationNS: n, TraceID: b, OperationID: a, ParentOperationID: b, ProcessingActivityID: a,
			DataSubjectID: b, Actor: a, Roles: []string{a, b}, Action: b, Outcome: a, HTTPMethod: b, Route: a,
			HTTPStatus: m, BreakGlass: flag, BreakGlassReason: b, Count: m, ItemsWithheld: -m, Agreement: a, Partner: b,
			LegalBasis: a, LegalReference: b, ConsentMode: a, Consent: b, Purpose: a, NoticeRequired: !flag,
		}
		if flag {
			body.Categories = []string{b}
		}
		if got, want := appendEventBody(nil, &body), encodingJSONBody(t, &body); !bytes.Equal(got, want) {
			t.Fatalf("appendEventBody differs from encoding/json:\n got  %q\n want %q", got, want)
		}
	})
}

func TestPseudonymiserIsPseudonymise(t *testing.T) {
	key := bytes.Repeat([]byte{7}, PseudonymKeySize)
	p := NewPseudonymiser(key)
	long := string(bytes.Repeat([]byte("D-1"), 50))
	for _, id := range append([]string{"d-9", "123456782", long}, awkwardStrings...) {
		for range 2 { // the second time with a reused HMAC
			if got, want := p.Pseudonym(id), Pseudonymise(key, id); got != want {
				t.Fatalf("Pseudonym(%q) = %s, Pseudonymise gives %s", id, got, want)
			}
		}
	}
	if other := NewPseudonymiser(bytes.Repeat([]byte{8}, PseudonymKeySize)); other.Pseudonym("d-9") == p.Pseudonym("d-9") {
		t.Fatal("two keys gave the same pseudonym")
	}
}
