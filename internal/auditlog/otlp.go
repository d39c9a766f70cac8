package auditlog

import (
	"encoding/hex"
	"fmt"
	"strconv"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The attributes of the OTLP spans that carry the lines of a chain to the
// logbook (traces signal). Each line is one span. The line itself, in
// AttrLine, is authoritative: its hash is what the chain links. The
// Logboek Dataverwerkingen attributes (dpl.core.*) repeat members of the line
// for OpenTelemetry tooling, and the logbook refuses a span whose attributes
// disagree with its line.
const (
	// AttrStore is the resource attribute naming the store, namespace/name.
	AttrStore = "dossierguard.store"
	// AttrPod is the resource attribute naming the proxy's pod
	// (OpenTelemetry semantic convention k8s.pod.name).
	AttrPod = "k8s.pod.name"
	// AttrChainID is the id of the chain: the hash of its genesis line.
	AttrChainID = "dossierguard.audit.chain_id"
	// AttrSeq is the seq of the line.
	AttrSeq = "dossierguard.audit.seq"
	// AttrType is the type of the line.
	AttrType = "dossierguard.audit.type"
	// AttrLine is the exact line, without its newline.
	AttrLine = "dossierguard.audit.line"

	// AttrProcessingActivityID is dpl.core.processing_activity_id.
	AttrProcessingActivityID = "dpl.core.processing_activity_id"
	// AttrDataSubjectID is dpl.core.data_subject_id: the pseudonym.
	AttrDataSubjectID = "dpl.core.data_subject_id"
	// AttrDataSubjectIDType is dpl.core.data_subject_id_type; always
	// "pseudonym" (a keyed hash, see Pseudonymise).
	AttrDataSubjectIDType = "dpl.core.data_subject_id_type"

	// ServiceName is the service.name of the audit proxy's spans.
	ServiceName = "dossierguard-audit-proxy"
	// scopeName is the instrumentation scope of the spans.
	scopeName = "github.com/dossierguard/dossierguard/internal/auditlog"
)

// Span names of the lines that are not events; an event's span is named
// after its route.
const (
	SpanNameCheckpoint = "dossierguard.audit.checkpoint"
	SpanNameGenesis    = "dossierguard.audit.genesis"
)

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// SpanOf is the OTLP span that carries record r of chain chainID.
func SpanOf(chainID string, r *Record) *tracepb.Span {
	s := &tracepb.Span{
		Kind:              tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(r.Time.UnixNano()),
		EndTimeUnixNano:   uint64(r.Time.UnixNano()),
		Attributes: []*commonpb.KeyValue{
			strAttr(AttrChainID, chainID),
			intAttr(AttrSeq, int64(r.Seq)),
			strAttr(AttrType, r.Type),
			strAttr(AttrLine, string(r.Line)),
		},
	}
	chain, _ := hex.DecodeString(chainID)
	hash, _ := hex.DecodeString(r.Hash)
	switch r.Type {
	case TypeEvent:
		ev := r.Event
		s.TraceId, _ = hex.DecodeString(ev.TraceID)
		s.SpanId, _ = hex.DecodeString(ev.OperationID)
		if ev.ParentOperationID != "" {
			s.ParentSpanId, _ = hex.DecodeString(ev.ParentOperationID)
		}
		s.Name = ev.Route
		s.EndTimeUnixNano = uint64(ev.Time.Add(ev.Duration).UnixNano())
		s.Attributes = append(s.Attributes, strAttr(AttrProcessingActivityID, ev.ProcessingActivityID))
		if ev.DataSubject != "" {
			s.Attributes = append(s.Attributes, strAttr(AttrDataSubjectID, ev.DataSubject), strAttr(AttrDataSubjectIDType, "pseudonym"))
		}
		s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
		if ev.Outcome != OutcomeAllowed {
			s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: string(ev.Outcome)}
		}
	case TypeCheckpoint:
		s.Name = SpanNameCheckpoint
	case TypeGenesis:
		s.Name = SpanNameGenesis
	}
	if s.TraceId == nil && len(chain) >= 16 {
		s.TraceId = chain[:16]
	}
	if s.SpanId == nil && len(hash) >= 8 {
		s.SpanId = hash[:8]
	}
	return s
}

// ExportRequest is the OTLP export request that carries records of one
// chain, in order.
func ExportRequest(store, pod, chainID string, recs []*Record) *coltracepb.ExportTraceServiceRequest {
	spans := make([]*tracepb.Span, len(recs))
	for i, r := range recs {
		spans[i] = SpanOf(chainID, r)
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			strAttr("service.name", ServiceName), strAttr(AttrStore, store), strAttr(AttrPod, pod),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: scopeName}, Spans: spans}},
	}}}
}

// Attr returns the string or integer value of attribute k, and whether
// it is present.
func Attr(attrs []*commonpb.KeyValue, k string) (string, bool) {
	for _, kv := range attrs {
		if kv.GetKey() != k {
			continue
		}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue, true
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10), true
		default:
			return "", true
		}
	}
	return "", false
}

// RecordOfSpan decodes the record a span carries and the id of its chain.
// The record is checked as ParseRecord checks it, and the span's chain, seq,
// type and dpl.core attributes must agree with the line: its error is a
// *RecordError.
func RecordOfSpan(s *tracepb.Span) (*Record, string, error) {
	line, ok := Attr(s.GetAttributes(), AttrLine)
	if !ok || line == "" {
		return nil, "", &RecordError{ReasonMalformed, "the span has no " + AttrLine + " attribute"}
	}
	chainID, _ := Attr(s.GetAttributes(), AttrChainID)
	if !isLowerHex(chainID, 64) {
		return nil, "", &RecordError{ReasonMalformed, "the span's " + AttrChainID + " attribute must be 64 lowercase hex digits"}
	}
	r, err := ParseRecord([]byte(line))
	if err != nil {
		return nil, chainID, err
	}
	if seq, _ := Attr(s.GetAttributes(), AttrSeq); seq != strconv.FormatUint(r.Seq, 10) {
		return nil, chainID, &RecordError{ReasonMalformed, fmt.Sprintf("the span's %s attribute disagrees with the seq of its line (%d)", AttrSeq, r.Seq)}
	}
	if typ, _ := Attr(s.GetAttributes(), AttrType); typ != r.Type {
		return nil, chainID, &RecordError{ReasonMalformed, fmt.Sprintf("the span's %s attribute disagrees with the type of its line (seq %d)", AttrType, r.Seq)}
	}
	if r.Type == TypeGenesis && r.Hash != chainID {
		return nil, chainID, &RecordError{ReasonMalformed, "the chain id of a genesis span must be the hash of its line"}
	}
	if r.Event != nil {
		for _, c := range []struct{ k, want string }{
			{AttrProcessingActivityID, r.Event.ProcessingActivityID},
			{AttrDataSubjectID, r.Event.DataSubject},
		} {
			if got, _ := Attr(s.GetAttributes(), c.k); got != c.want {
				return nil, chainID, &RecordError{ReasonMalformed, fmt.Sprintf("the span's %s attribute disagrees with its line (seq %d)", c.k, r.Seq)}
			}
		}
	}
	return r, chainID, nil
}
