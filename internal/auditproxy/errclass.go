package auditproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// errorClass names the kind of a transport error without its text. The
// text of an error from reading a response can quote the bytes the peer
// sent (net/http writes `malformed MIME header line: "..."`, `bad
// Content-Length "..."`), and a response of the application can hold
// personal data, so the proxy logs only this class.
func errorClass(err error) string {
	var (
		netErr   net.Error
		dnsErr   *net.DNSError
		opErr    *net.OpError
		recErr   tls.RecordHeaderError
		certErr  *tls.CertificateVerificationError
		authErr  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalErr x509.CertificateInvalidError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &dnsErr):
		return "name resolution failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &authErr), errors.As(err, &hostErr), errors.As(err, &invalErr):
		return "TLS failure"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a complete response"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "dial failed"
	case errors.Is(err, ErrCompletionNotRecorded):
		return ErrCompletionNotRecorded.Error()
	case errors.Is(err, ErrDecisionNotRecorded):
		return ErrDecisionNotRecorded.Error()
	}
	return "malformed or unexpected response (details withheld: they can quote the response)"
}
