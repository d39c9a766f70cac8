package auditproxy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestFilterRecords: the items of withheld dossiers are left out, the rest
// of the document is kept; every body that is not the declared JSON, an
// item without a usable dossier id, a body over the bound (also once
// decompressed) and a coding other than gzip are refused.
func TestFilterRecords(t *testing.T) {
	withheld := map[string]bool{"D-1": true, "1001": true}
	withhold := func(id string) bool { return withheld[id] }
	spec := func(items, field string) *accesspolicy.Records {
		return &accesspolicy.Records{Format: "JSON", Items: items, DossierField: field, MaxBodyBytes: 1024}
	}
	bomb := gzipped(t, `[`+strings.Repeat(`{"dossier":"D-2"},`, 200)+`{"dossier":"D-2"}]`)
	cases := []struct {
		name         string
		spec         *accesspolicy.Records
		contentType  string
		encoding     string
		body         string
		want         string
		wantWithheld int
		wantErr      string
		tooLarge     bool
	}{
		{name: "top-level array", spec: spec("", "/dossier"), body: `[{"dossier":"D-1","a":"x"},{"dossier":"D-2","a":"y"}]`,
			want: `[{"dossier":"D-2","a":"y"}]`, wantWithheld: 1},
		{name: "nothing withheld keeps every item", spec: spec("", "/dossier"), body: `[{"dossier":"D-2"},{"dossier":"D-3"}]`,
			want: `[{"dossier":"D-2"},{"dossier":"D-3"}]`},
		{name: "an empty array", spec: spec("", "/dossier"), body: `[]`, want: `[]`},
		{name: "array inside an envelope, other members kept", spec: spec("/data/addresses", "/dossier"),
			body: `{"total":3,"data":{"addresses":[{"dossier":"D-1"},{"dossier":"D-2"},{"dossier":"D-1"}],"page":1},"next":null}`,
			want: `{"total":3,"data":{"addresses":[{"dossier":"D-2"}],"page":1},"next":null}`, wantWithheld: 2},
		{name: "a member after the array of the same prefix is copied", spec: spec("/a", "/d"), body: `{"ab":[{"x":1}],"a":[{"d":"D-1"}]}`,
			want: `{"ab":[{"x":1}],"a":[]}`, wantWithheld: 1},
		{name: "pointer through an array index", spec: spec("/pages/1", "/d"), body: `{"pages":[[{"q":1}],[{"d":"D-1"},{"d":"D-2"}]]}`,
			want: `{"pages":[[{"q":1}],[{"d":"D-2"}]]}`, wantWithheld: 1},
		{name: "escaped pointer tokens", spec: spec("/a~1b/c~0d", "/x~1y"), body: `{"a/b":{"c~d":[{"x/y":"D-1"},{"x/y":"D-4"}]}}`,
			want: `{"a/b":{"c~d":[{"x/y":"D-4"}]}}`, wantWithheld: 1},
		{name: "nested dossier field", spec: spec("", "/case/id"), body: `[{"case":{"id":"D-1"}},{"case":{"other":1,"id":"D-5"}}]`,
			want: `[{"case":{"other":1,"id":"D-5"}}]`, wantWithheld: 1},
		{name: "an integer dossier id", spec: spec("", "/dossier"), body: `[{"dossier":1001},{"dossier":1002}]`,
			want: `[{"dossier":1002}]`, wantWithheld: 1},
		{name: "a +json media type with parameters", spec: spec("", "/dossier"), contentType: "application/vnd.wijkteam+json; charset=utf-8",
			body: `[{"dossier":"D-1"}]`, want: `[]`, wantWithheld: 1},
		{name: "gzip is decoded and the result is plain", spec: spec("", "/dossier"), encoding: "gzip",
			body: gzipped(t, `[{"dossier":"D-1"},{"dossier":"D-2"}]`), want: `[{"dossier":"D-2"}]`, wantWithheld: 1},

		{name: "an item without the dossier field", spec: spec("", "/dossier"), body: `[{"dossier":"D-2"},{"other":"D-1"}]`, wantErr: "item 1: no value at records.dossierField"},
		{name: "a dossier field that is an object", spec: spec("", "/dossier"), body: `[{"dossier":{"id":"D-1"}}]`, wantErr: "is not a dossier id"},
		{name: "a dossier field that is null", spec: spec("", "/dossier"), body: `[{"dossier":null}]`, wantErr: "is not a dossier id"},
		{name: "a dossier id out of form", spec: spec("", "/dossier"), body: `[{"dossier":"D 1/.."}]`, wantErr: "is not a dossier id"},
		{name: "a fractional number", spec: spec("", "/dossier"), body: `[{"dossier":1.5}]`, wantErr: "is not a dossier id"},
		{name: "an item that is not an object", spec: spec("", "/dossier"), body: `["D-1"]`, wantErr: "item 0: no value at records.dossierField"},
		{name: "no array at the pointer", spec: spec("/addresses", "/dossier"), body: `{"items":[{"dossier":"D-1"}]}`, wantErr: "no array at records.items"},
		{name: "an object at the pointer", spec: spec("/addresses", "/dossier"), body: `{"addresses":{"dossier":"D-1"}}`, wantErr: "is not an array"},
		{name: "a top-level object for a top-level array", spec: spec("", "/dossier"), body: `{"dossier":"D-1"}`, wantErr: "is not an array"},
		{name: "truncated JSON", spec: spec("", "/dossier"), body: `[{"dossier":"D-2"},{"dossier":"D-1"`, wantErr: "not valid JSON"},
		{name: "not JSON at all", spec: spec("", "/dossier"), body: `<html>Gezin Voorbeeld</html>`, wantErr: "not valid JSON"},
		{name: "an empty body", spec: spec("", "/dossier"), body: ``, wantErr: "not valid JSON"},
		{name: "two JSON values", spec: spec("", "/dossier"), body: `[{"dossier":"D-2"}] [{"dossier":"D-1"}]`, wantErr: "more than one JSON value"},
		{name: "a duplicate member name", spec: spec("/a", "/dossier"), body: `{"a":[{"dossier":"D-2"}],"a":[{"dossier":"D-1"}]}`, wantErr: "not valid JSON"},
		{name: "a duplicate dossier field in an item", spec: spec("", "/dossier"), body: `[{"dossier":"D-2","dossier":"D-1"}]`, wantErr: "not valid JSON"},
		{name: "invalid UTF-8", spec: spec("", "/dossier"), body: "[{\"dossier\":\"D-2\",\"n\":\"\xff\"}]", wantErr: "not valid JSON"},
		{name: "a media type that is not JSON", spec: spec("", "/dossier"), contentType: "text/plain", body: `[]`, wantErr: "Content-Type"},
		{name: "no media type", spec: spec("", "/dossier"), contentType: "-", body: `[]`, wantErr: "Content-Type"},
		{name: "another coding", spec: spec("", "/dossier"), encoding: "br", body: `[]`, wantErr: "Content-Encoding"},
		{name: "two codings", spec: spec("", "/dossier"), encoding: "gzip,gzip", body: gzipped(t, gzipped(t, `[]`)), wantErr: "Content-Encoding"},
		{name: "gzip that is not gzip", spec: spec("", "/dossier"), encoding: "gzip", body: `[]`, wantErr: "not valid gzip"},
		{name: "over the bound", spec: spec("", "/dossier"), body: `[` + strings.Repeat(`{"dossier":"D-2"},`, 100) + `{"dossier":"D-2"}]`, wantErr: "larger than the route's bound of 1024 bytes", tooLarge: true},
		{name: "over the bound once decompressed", spec: spec("", "/dossier"), encoding: "gzip", body: bomb, wantErr: "larger than the route's bound", tooLarge: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			if tc.name == "over the bound once decompressed" && len(tc.body) > 1024 {
				t.Fatalf("the compressed body is %d bytes; the case needs it within the bound", len(tc.body))
			}
			out, n, err := filterRecords(tc.spec, ct, tc.encoding, strings.NewReader(tc.body), withhold)
			if tc.wantErr != "" {
				var rerr *RecordsError
				if !errors.As(err, &rerr) || !strings.Contains(err.Error(), tc.wantErr) || rerr.TooLarge != tc.tooLarge {
					t.Fatalf("err = %v; want a RecordsError with %q (too large: %v)", err, tc.wantErr, tc.tooLarge)
				}
				if out != nil || strings.Contains(err.Error(), "Gezin") || strings.Contains(err.Error(), "D-1") {
					t.Errorf("a refusal returned a body or quoted the response: %q, %v", out, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want || n != tc.wantWithheld {
				t.Errorf("filtered to %s, %d withheld; want %s, %d", out, n, tc.want, tc.wantWithheld)
			}
		})
	}
}
