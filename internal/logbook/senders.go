package logbook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// SenderAuthenticator decides who may ship chains to the logbook: whether
// the bearer token of an export request belongs to a pod that may ship the
// chains of store (namespace/name) as pod (the pod's name). It returns nil,
// or a *SenderError; any other error counts as "could not decide" (503, the
// sender retries). It must never log or return the token.
type SenderAuthenticator interface {
	AuthenticateSender(ctx context.Context, token, store, pod string) error
}

// SenderError is a refusal of a sender: Status is 401 (no valid token),
// 403 (the token's pod may not ship these chains) or 503 (the authenticator
// could not decide; retry). Message names the rule that was not met and is
// safe to send back and to log: no token, no personal data.
type SenderError struct {
	Status  int
	Message string
}

func (e *SenderError) Error() string { return e.Message }

// bearerToken is the token of an "Authorization: Bearer" header, "" without.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// requestSender is the store and pod an export request ships chains of,
// from its resource attributes; every resource of the request must name
// the same ones (a proxy ships one chain).
func requestSender(req *coltracepb.ExportTraceServiceRequest) (store, pod string, err error) {
	for i, rs := range req.GetResourceSpans() {
		s, _ := auditlog.Attr(rs.GetResource().GetAttributes(), auditlog.AttrStore)
		p, _ := auditlog.Attr(rs.GetResource().GetAttributes(), auditlog.AttrPod)
		if s == "" || p == "" {
			return "", "", errors.New("every resource must carry the attributes " + auditlog.AttrStore + " and " + auditlog.AttrPod)
		}
		ns, name, _ := strings.Cut(s, "/")
		if len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 || len(validation.IsDNS1123Subdomain(p)) > 0 {
			return "", "", errors.New("the store must be NAMESPACE/NAME and the pod a pod's name, as Kubernetes names them")
		}
		if i > 0 && (s != store || p != pod) {
			return "", "", errors.New("one request may ship the chains of one store and one pod only")
		}
		store, pod = s, p
	}
	if store == "" {
		return "", "", errors.New("the request carries no resource")
	}
	return store, pod, nil
}

// authenticate checks the sender of an export request when the logbook has
// an authenticator; on refusal it has answered with an OTLP status and
// returns false. The lines of a refused request are not looked at further,
// so an unauthenticated party cannot make the logbook write anything.
func (l *Logbook) authenticate(w http.ResponseWriter, r *http.Request, ct string, req *coltracepb.ExportTraceServiceRequest, log *slog.Logger) bool {
	if l.senders == nil {
		return true
	}
	token := bearerToken(r)
	if token == "" {
		log.Warn("Refused an export request without a bearer token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="dossierguard-logbook"`)
		writeStatus(w, ct, http.StatusUnauthorized, "no bearer token: the audit proxy must present its projected ServiceAccount token (audience "+DefaultSenderAudience+")")
		return false
	}
	store, pod, err := requestSender(req)
	if err != nil {
		log.Warn("Refused an export request that names no single sender", "reason", err.Error())
		writeStatus(w, ct, http.StatusBadRequest, err.Error())
		return false
	}
	err = l.senders.AuthenticateSender(r.Context(), token, store, pod)
	if err == nil {
		return true
	}
	var se *SenderError
	if !errors.As(err, &se) {
		se = &SenderError{Status: http.StatusServiceUnavailable, Message: "the logbook could not check the sender; retry"}
	}
	if se.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if se.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dossierguard-logbook"`)
	}
	log.Warn("Refused a sender", "store", store, "pod", pod, "status", se.Status, "reason", se.Message)
	writeStatus(w, ct, se.Status, se.Message)
	return false
}

// DefaultSenderAudience is the audience of the projected ServiceAccount
// token an audit proxy presents to the logbook.
const DefaultSenderAudience = v1alpha1.LogbookTokenAudience
