package egressgateway

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// DefaultTLSPollInterval is how often an agreement's TLS files are read
// again, at most.
const DefaultTLSPollInterval = 2 * time.Second

// PartnerTransports gives the transport to each agreement's partner. The
// TLS material of agreement A is read from Dir/A: the CA bundle
// (accesspolicy.EgressCAFile), the only roots the partner's certificate may
// chain to, and, when the agreement presents one, the client certificate
// and key (EgressClientCertFile, EgressClientKeyFile). The files are read
// again at most every Poll and, when their content changed, a new transport
// replaces the old one (Kubernetes updates Secret volumes by swapping a
// symlink, so contents are compared, not modification times). While new
// files do not load (a rotation half written) the last good transport is
// kept; with none, the agreement's requests are refused.
type PartnerTransports struct {
	// Dir holds a directory per agreement.
	Dir string
	// Poll is DefaultTLSPollInterval when 0.
	Poll time.Duration
	// Configure, when set, adjusts each new transport (tests, benchmarks).
	Configure func(*http.Transport)

	mu          sync.Mutex
	byAgreement map[string]*partnerTransport
}

type partnerTransport struct {
	sum        [sha256.Size]byte
	clientCert bool
	checked    time.Time
	rt         *http.Transport
}

// ErrTLSMaterial is returned (wrapped) when an agreement's TLS files cannot
// be read or used; the message names the file, never its content.
var ErrTLSMaterial = errors.New("the partner's TLS material is not usable")

// For returns the transport to the partner of the named agreement;
// clientCert says whether the agreement presents a client certificate.
func (p *PartnerTransports) For(name string, clientCert bool) (http.RoundTripper, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	poll := p.Poll
	if poll <= 0 {
		poll = DefaultTLSPollInterval
	}
	cur := p.byAgreement[name]
	if cur != nil && cur.clientCert != clientCert {
		cur = nil // the agreement changed whether it presents a certificate
	}
	if cur != nil && time.Since(cur.checked) < poll {
		return cur.rt, nil
	}
	rt, sum, err := p.load(name, clientCert, cur)
	switch {
	case err != nil && cur != nil:
		// Keep the last good transport while new files do not load.
		cur.checked = time.Now()
		return cur.rt, nil
	case err != nil:
		return nil, err
	case rt == nil: // unchanged
		cur.checked = time.Now()
		return cur.rt, nil
	}
	if old := p.byAgreement[name]; old != nil {
		old.rt.CloseIdleConnections()
	}
	if p.byAgreement == nil {
		p.byAgreement = map[string]*partnerTransport{}
	}
	p.byAgreement[name] = &partnerTransport{sum: sum, clientCert: clientCert, checked: time.Now(), rt: rt}
	return rt, nil
}

// load reads the agreement's files and builds a transport from them; nil
// (and no error) when their content is that of cur.
func (p *PartnerTransports) load(name string, clientCert bool, cur *partnerTransport) (*http.Transport, [sha256.Size]byte, error) {
	files, sum, err := p.read(name, clientCert)
	if err != nil {
		return nil, sum, err
	}
	if cur != nil && cur.sum == sum {
		return nil, sum, nil
	}
	rt, err := p.transport(name, files, clientCert)
	return rt, sum, err
}

// tlsFiles are the contents of an agreement's TLS files.
type tlsFiles struct{ ca, cert, key []byte }

func (p *PartnerTransports) read(name string, clientCert bool) (tlsFiles, [sha256.Size]byte, error) {
	dir := filepath.Join(p.Dir, name)
	var f tlsFiles
	var err error
	if f.ca, err = os.ReadFile(filepath.Join(dir, accesspolicy.EgressCAFile)); err != nil {
		return tlsFiles{}, [sha256.Size]byte{}, fmt.Errorf("%w: agreement %s: cannot read %s", ErrTLSMaterial, name, accesspolicy.EgressCAFile)
	}
	if clientCert {
		if f.cert, err = os.ReadFile(filepath.Join(dir, accesspolicy.EgressClientCertFile)); err != nil {
			return tlsFiles{}, [sha256.Size]byte{}, fmt.Errorf("%w: agreement %s: cannot read %s", ErrTLSMaterial, name, accesspolicy.EgressClientCertFile)
		}
		if f.key, err = os.ReadFile(filepath.Join(dir, accesspolicy.EgressClientKeyFile)); err != nil {
			return tlsFiles{}, [sha256.Size]byte{}, fmt.Errorf("%w: agreement %s: cannot read %s", ErrTLSMaterial, name, accesspolicy.EgressClientKeyFile)
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{f.ca, f.cert, f.key} {
		_, _ = fmt.Fprintf(h, "%d:", len(b))
		_, _ = h.Write(b)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return f, sum, nil
}

// transport builds the transport of one agreement: TLS 1.2 or later to
// the endpoint's host name, only the CA bundle's roots, the client
// certificate when there is one, no environment proxy, HTTP/2 when the
// partner offers it.
func (p *PartnerTransports) transport(name string, f tlsFiles, clientCert bool) (*http.Transport, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(f.ca) {
		return nil, fmt.Errorf("%w: agreement %s: %s holds no PEM certificate", ErrTLSMaterial, name, accesspolicy.EgressCAFile)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if clientCert {
		cert, err := tls.X509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("%w: agreement %s: %s and %s are not a certificate and its key", ErrTLSMaterial, name, accesspolicy.EgressClientCertFile, accesspolicy.EgressClientKeyFile)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	rt := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
	}
	if p.Configure != nil {
		p.Configure(rt)
	}
	return rt, nil
}
