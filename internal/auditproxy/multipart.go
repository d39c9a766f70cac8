package auditproxy

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"regexp"
	"strings"
)

// errOverrideInBody ends a multipart body in which a _method field was found
// after part of it had been forwarded: the application gets a body without
// its closing delimiter, which no form parser accepts.
var errOverrideInBody = errors.New("the multipart body holds a " + methodParam + " field")

// maxPartHeader bounds the header block of one part.
const maxPartHeader = 64 << 10

// multipartGuard passes a multipart/form-data body on while it checks the
// name of every part, and releases no byte it has not checked: the header
// block of a part only once it is complete and names no _method field, and
// body bytes only up to where a delimiter could begin. Delimiters are found
// after a bare LF too, as lenient parsers do.
type multipartGuard struct {
	src     io.ReadCloser
	delim   []byte // "\n--" + boundary
	buf     []byte // bytes read and not yet released; buf[:checked] are checked
	checked int
	skip    int  // bytes of buf that are not the body's (the "\n" put in front)
	header  bool // between a delimiter and the end of its header block
	srcErr  error
	err     error
}

func newMultipartGuard(src io.ReadCloser, boundary string) *multipartGuard {
	// A "\n" in front lets the first delimiter, at the very start, be found
	// like every other.
	return &multipartGuard{src: src, delim: []byte("\n--" + boundary), buf: []byte{'\n'}, skip: 1}
}

// fill reads from the source until at least limit bytes are buffered, the
// source ends or a violation is found.
func (g *multipartGuard) fill(limit int) error {
	for g.err == nil && g.srcErr == nil && len(g.buf) < limit {
		g.readMore()
	}
	return g.err
}

// done reports whether the whole body has been read and checked.
func (g *multipartGuard) done() bool {
	return g.srcErr != nil && g.err == nil && g.checked == len(g.buf)
}

func (g *multipartGuard) readMore() {
	var chunk [32 << 10]byte
	n, err := g.src.Read(chunk[:])
	g.buf = append(g.buf, chunk[:n]...)
	if err != nil {
		g.srcErr = err
	}
	g.scan()
}

// scan advances checked as far as the bytes allow.
func (g *multipartGuard) scan() {
	eof := g.srcErr != nil
	for g.err == nil {
		rest := g.buf[g.checked:]
		if !g.header {
			i := bytes.Index(rest, g.delim)
			if i < 0 {
				if eof {
					g.checked = len(g.buf)
				} else {
					g.checked += max(0, len(rest)-len(g.delim)+1)
				}
				return
			}
			g.checked += i + len(g.delim)
			g.header = true
			continue
		}
		end, n := blankLine(rest)
		if end < 0 {
			if len(rest) > maxPartHeader {
				g.err = errors.New("a part's header block is too long")
			} else if eof {
				if namesMethod(rest) {
					g.err = errOverrideInBody
				} else {
					g.checked = len(g.buf)
				}
			}
			return
		}
		if namesMethod(rest[:end]) {
			g.err = errOverrideInBody
			return
		}
		g.checked += end + n
		g.header = false
	}
}

// blankLine finds the end of a header block: the first empty line, ended by
// CRLF or LF. It returns where the block ends and the length of the blank
// line's end.
func blankLine(b []byte) (int, int) {
	best, n := -1, 0
	if i := bytes.Index(b, []byte("\n\r\n")); i >= 0 {
		best, n = i+1, 2
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 && (best < 0 || i+1 < best) {
		best, n = i+1, 1
	}
	return best, n
}

// nameParam finds name= and name*= parameters in a header block, quoted or
// not, however the line around them reads (filename= does not count).
var nameParam = regexp.MustCompile(`(?i)(?:^|[\s;])name\*?\s*=\s*("(?:\\.|[^"\\])*"|[^;\r\n]*)`)

// namesMethod reports whether a part's header block names a field a
// framework could read as _method (decoded and normalised as in
// hasMethodParam; an RFC 5987 charset'lang' prefix is dropped).
func namesMethod(block []byte) bool {
	for _, m := range nameParam.FindAllSubmatch(block, -1) {
		v := strings.TrimSpace(string(m[1]))
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		}
		if i := strings.LastIndexByte(v, '\''); i >= 0 {
			v = v[i+1:]
		}
		if dec, err := url.PathUnescape(v); err == nil {
			v = dec
		}
		if strings.HasPrefix(NormalisedHeaderName(strings.TrimLeft(v, " ")), methodParam) {
			return true
		}
	}
	return false
}

// Read releases checked bytes, reading and checking more as needed.
func (g *multipartGuard) Read(p []byte) (int, error) {
	for {
		if g.skip > 0 && g.checked >= g.skip {
			g.buf, g.checked, g.skip = g.buf[g.skip:], g.checked-g.skip, 0
		}
		if g.skip == 0 && g.checked > 0 {
			n := copy(p, g.buf[:g.checked])
			g.buf, g.checked = g.buf[n:], g.checked-n
			return n, nil
		}
		if g.err != nil {
			return 0, g.err
		}
		if g.srcErr != nil {
			return 0, g.srcErr
		}
		g.readMore()
	}
}

func (g *multipartGuard) Close() error { return g.src.Close() }
