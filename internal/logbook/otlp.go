package logbook

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TracesPath is the OTLP/HTTP path of the traces signal.
const TracesPath = "/v1/traces"

// DefaultMaxRequestBytes bounds the body of one export request (after
// decompression).
const DefaultMaxRequestBytes = 16 << 20

// The content types of OTLP/HTTP.
const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// Handler serves OTLP/HTTP export requests of the traces signal
// (POST /v1/traces, binary protobuf or JSON, optionally gzip-compressed), as
// the OTLP specification describes. The response is sent only after every
// line it acknowledges is committed. Refused lines are reported as a partial
// success (rejected_spans with the first reasons); a database failure is a
// 503 with Retry-After, which OTLP exporters retry.
func (l *Logbook) Handler(log *slog.Logger, maxBytes int64) http.Handler {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(TracesPath, func(w http.ResponseWriter, r *http.Request) {
		l.serveTraces(w, r, log, maxBytes)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := l.db.Ping(ctx); err != nil {
			http.Error(w, "the database does not answer", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

func (l *Logbook) serveTraces(w http.ResponseWriter, r *http.Request, log *slog.Logger, maxBytes int64) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != contentTypeProtobuf && ct != contentTypeJSON {
		writeStatus(w, contentTypeProtobuf, http.StatusUnsupportedMediaType, "Content-Type must be application/x-protobuf or application/json")
		return
	}
	req, ok := readExport(w, r, ct, maxBytes)
	if !ok {
		return
	}
	if !l.authenticate(w, r, ct, req, log) {
		return
	}
	res, err := l.ingest(r.Context(), req, l.senders != nil)
	if err != nil {
		log.Error("Ingest failed; the sender will retry", "sqlstate", sqlState(err))
		w.Header().Set("Retry-After", "1")
		writeStatus(w, ct, http.StatusServiceUnavailable, "the logbook could not store the lines; retry")
		return
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if len(res.Refused) > 0 {
		msgs := make([]string, 0, 3)
		for _, ref := range res.Refused {
			if ref.Reason == ReasonAfterBreak {
				continue
			}
			log.Warn("Refused an audit line", "chain", ref.ChainID, "seq", ref.Seq, "reason", string(ref.Reason))
			if len(msgs) < 3 {
				msgs = append(msgs, ref.String())
			}
		}
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: int64(len(res.Refused)),
			ErrorMessage:  strings.Join(msgs, "; "),
		}
	}
	writeMessage(w, ct, http.StatusOK, resp)
}

// readExport reads and decodes the export request; on failure it has
// answered and returns false.
func readExport(w http.ResponseWriter, r *http.Request, ct string, maxBytes int64) (*coltracepb.ExportTraceServiceRequest, bool) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxBytes)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeStatus(w, ct, http.StatusBadRequest, "the body is not gzip")
			return nil, false
		}
		body = io.LimitReader(zr, maxBytes+1)
	default:
		writeStatus(w, ct, http.StatusUnsupportedMediaType, "Content-Encoding must be gzip or none")
		return nil, false
	}
	data, err := io.ReadAll(body)
	if err != nil || int64(len(data)) > maxBytes {
		writeStatus(w, ct, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is larger than %d bytes or could not be read", maxBytes))
		return nil, false
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if ct == contentTypeJSON {
		err = unmarshalJSON(data, req)
	} else {
		err = proto.Unmarshal(data, req)
	}
	if err != nil {
		writeStatus(w, ct, http.StatusBadRequest, "the body is not an OTLP ExportTraceServiceRequest")
		return nil, false
	}
	return req, true
}

// sqlState is the SQLSTATE of a database error, for logs that must not hold
// raw dependency errors.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	return "connection"
}

func writeStatus(w http.ResponseWriter, ct string, code int, msg string) {
	writeMessage(w, ct, code, &spb.Status{Message: msg})
}

func writeMessage(w http.ResponseWriter, ct string, code int, m proto.Message) {
	var b []byte
	if ct == contentTypeJSON {
		b, _ = protojson.Marshal(m)
	} else {
		ct = contentTypeProtobuf
		b, _ = proto.Marshal(m)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// unmarshalJSON decodes the OTLP JSON encoding, which differs from the
// protobuf JSON mapping in one point: trace and span ids are hex strings,
// not base64. They are rewritten before protojson decodes the request;
// unknown fields are ignored, as OTLP asks of receivers.
func unmarshalJSON(data []byte, m proto.Message) error {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if err := hexIDsToBase64(v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
}

var idFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

func hexIDsToBase64(v any) error {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && idFields[k] {
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("%s must be hex", k)
				}
				t[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := hexIDsToBase64(x); err != nil {
				return err
			}
		}
	case []any:
		for _, x := range t {
			if err := hexIDsToBase64(x); err != nil {
				return err
			}
		}
	}
	return nil
}
