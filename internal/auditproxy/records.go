package auditproxy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// RecordsError is why the response of a records route (a route without
// {dossier} that declares spec.audit.routes[].records) cannot be filtered;
// the proxy then refuses it (502) and sends nothing of it. Reason never
// quotes the response.
type RecordsError struct {
	// TooLarge: the response is larger than the route's maxBodyBytes.
	TooLarge bool
	Reason   string
}

func (e *RecordsError) Error() string { return "the response cannot be filtered: " + e.Reason }

func recordsErr(format string, args ...any) *RecordsError {
	return &RecordsError{Reason: fmt.Sprintf(format, args...)}
}

// filterRecords reads the whole response of a records route (at most
// spec.MaxBodyBytes once decompressed) and returns it without the items
// whose dossier withhold reports, with the number of items left out. The
// body must be JSON of the declared shape: a media type application/json
// or +json; identity or gzip content coding; one JSON value with no
// duplicate object names and valid UTF-8; an array at spec.Items; in every
// item a dossier id at spec.DossierField, a string or an integer in the
// form {dossier} takes. Anything else is a *RecordsError, and nothing of
// the body may be sent. The result is not compressed.
func filterRecords(spec *accesspolicy.Records, contentType, contentEncoding string, body io.Reader, withhold func(dossierID string) bool) ([]byte, int, error) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, 0, recordsErr("the Content-Type is not application/json or a +json type")
	}
	limit := spec.MaxBodyBytes
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(io.LimitReader(body, limit+1))
		if err != nil {
			return nil, 0, recordsErr("the gzip-encoded response is not valid gzip")
		}
		defer func() { _ = zr.Close() }()
		body = zr
	default:
		return nil, 0, recordsErr("the Content-Encoding is neither identity nor gzip")
	}
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	switch {
	case err != nil:
		return nil, 0, recordsErr("the response could not be read whole")
	case int64(len(data)) > limit:
		return nil, 0, &RecordsError{TooLarge: true, Reason: fmt.Sprintf("the response is larger than the route's bound of %d bytes (records.maxBodyBytes)", limit)}
	}
	return filterJSON(data, jsontext.Pointer(spec.Items), jsontext.Pointer(spec.DossierField), withhold)
}

// recordsWalk copies a JSON document from dec to enc, leaving out the
// withheld items of the array at items.
type recordsWalk struct {
	dec      *jsontext.Decoder
	enc      *jsontext.Encoder
	items    jsontext.Pointer
	field    jsontext.Pointer
	withhold func(string) bool
	found    bool
	withheld int
}

func filterJSON(data []byte, items, field jsontext.Pointer, withhold func(string) bool) ([]byte, int, error) {
	var out bytes.Buffer
	out.Grow(len(data))
	w := &recordsWalk{
		dec: jsontext.NewDecoder(bytes.NewReader(data)), enc: jsontext.NewEncoder(&out),
		items: items, field: field, withhold: withhold,
	}
	if err := w.copy(""); err != nil {
		return nil, 0, err
	}
	if _, err := w.dec.ReadToken(); err != io.EOF {
		return nil, 0, recordsErr("the response holds more than one JSON value")
	}
	if !w.found {
		return nil, 0, recordsErr("the response has no array at records.items %q", string(items))
	}
	return bytes.TrimRight(out.Bytes(), "\n"), w.withheld, nil
}

// notJSON is the error of a body that does not parse; the parser's message
// can quote the body, so it is not passed on.
var notJSON = recordsErr("the response is not valid JSON (or holds a duplicate object name or invalid UTF-8)")

// leadsTo reports whether the value at ptr contains the value at target.
func leadsTo(ptr, target jsontext.Pointer) bool {
	return strings.HasPrefix(string(target), string(ptr)+"/") || (ptr == "" && target != "")
}

// copy copies the value at ptr.
func (w *recordsWalk) copy(ptr jsontext.Pointer) error {
	kind := w.dec.PeekKind()
	switch {
	case !strings.ContainsRune(`nft"0{[`, rune(kind)):
		return notJSON // PeekKind names no kind for what does not start a value
	case ptr == w.items:
		if kind != '[' {
			return recordsErr("the value at records.items %q is not an array", string(w.items))
		}
		w.found = true
		return w.filterItems()
	case leadsTo(ptr, w.items) && (kind == '{' || kind == '['):
		return w.copyContainer(ptr, kind)
	}
	v, err := w.dec.ReadValue()
	if err != nil {
		return notJSON
	}
	return w.write(v)
}

// copyContainer copies the object or array at ptr that leads to the items,
// member by member.
func (w *recordsWalk) copyContainer(ptr jsontext.Pointer, kind jsontext.Kind) error {
	if err := w.copyToken(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		switch w.dec.PeekKind() {
		case 0:
			return notJSON
		case '}', ']':
			return w.copyToken()
		}
		next := ptr.AppendToken(strconv.Itoa(i))
		if kind == '{' {
			name, err := w.dec.ReadToken()
			if err != nil || w.enc.WriteToken(name) != nil {
				return notJSON
			}
			next = ptr.AppendToken(name.String())
		}
		if err := w.copy(next); err != nil {
			return err
		}
	}
}

// copyToken copies one token: a bracket or a brace.
func (w *recordsWalk) copyToken() error {
	tok, err := w.dec.ReadToken()
	if err != nil || w.enc.WriteToken(tok) != nil {
		return notJSON
	}
	return nil
}

func (w *recordsWalk) write(v jsontext.Value) error {
	if err := w.enc.WriteValue(v); err != nil {
		return notJSON
	}
	return nil
}

// filterItems copies the array of items, leaving out the withheld ones.
func (w *recordsWalk) filterItems() error {
	if err := w.copyToken(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		switch w.dec.PeekKind() {
		case ']':
			return w.copyToken()
		case 0:
			return notJSON
		}
		item, err := w.dec.ReadValue()
		if err != nil {
			return notJSON
		}
		id, err := dossierField(item, w.field)
		if err != nil {
			return recordsErr("item %d: %s", i, err.Error())
		}
		if w.withhold(id) {
			w.withheld++
			continue
		}
		if err := w.write(item); err != nil {
			return err
		}
	}
}

var (
	errNoDossierField  = errors.New("no value at records.dossierField")
	errNotDossierValue = fmt.Errorf("the value at records.dossierField is not a dossier id (a string or integer of 1 to %d letters, digits and -)", MaxDossierIDLen)
)

// dossierField is the dossier id at field within item.
func dossierField(item jsontext.Value, field jsontext.Pointer) (string, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(item))
	for tok := range field.Tokens() {
		if !descend(dec, tok) {
			return "", errNoDossierField
		}
	}
	v, err := dec.ReadToken()
	if err != nil {
		return "", errNoDossierField
	}
	var id string
	switch v.Kind() {
	case '"':
		id = v.String()
	case '0':
		id = v.String()
		if strings.ContainsAny(id, ".eE+") {
			return "", errNotDossierValue
		}
	default:
		return "", errNotDossierValue
	}
	if !canonicalDossierID(id) {
		return "", errNotDossierValue
	}
	return id, nil
}

// descend moves dec into the member or element tok of the object or array
// that comes next; false when there is none.
func descend(dec *jsontext.Decoder, tok string) bool {
	switch dec.PeekKind() {
	case '{':
		return descendObject(dec, tok)
	case '[':
		return descendArray(dec, tok)
	}
	return false
}

func descendObject(dec *jsontext.Decoder, name string) bool {
	if _, err := dec.ReadToken(); err != nil {
		return false
	}
	for dec.PeekKind() == '"' {
		n, err := dec.ReadToken()
		if err != nil {
			return false
		}
		if n.String() == name {
			return true
		}
		if dec.SkipValue() != nil {
			return false
		}
	}
	return false
}

func descendArray(dec *jsontext.Decoder, index string) bool {
	n, err := strconv.Atoi(index)
	if err != nil || n < 0 || strconv.Itoa(n) != index {
		return false
	}
	if _, err := dec.ReadToken(); err != nil {
		return false
	}
	for i := 0; dec.PeekKind() != ']' && dec.PeekKind() != 0; i++ {
		if i == n {
			return true
		}
		if dec.SkipValue() != nil {
			return false
		}
	}
	return false
}
