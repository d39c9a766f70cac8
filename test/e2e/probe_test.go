//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// result is one line of netprobe's output (test/e2e/netprobe).
type result struct {
	Addr    string   `json:"addr"`
	Start   int64    `json:"start"`
	Open    bool     `json:"open"`
	Millis  float64  `json:"ms"`
	Error   string   `json:"error,omitempty"`
	Answers []string `json:"answers,omitempty"`
}

func (r result) started() time.Time { return time.Unix(0, r.Start) }

func (r result) String() string {
	if r.Open {
		return fmt.Sprintf("%s open (%.1f ms)", r.Addr, r.Millis)
	}
	return fmt.Sprintf("%s refused: %s (%.1f ms)", r.Addr, r.Error, r.Millis)
}

// prober runs netprobe in one container of a running pod, with kubectl
// exec's API (websocket, falling back to SPDY). Its packets are the pod's:
// they leave from the pod's network namespace and meet its NetworkPolicies.
type prober struct {
	name           string // for messages: who sends
	namespace, pod string
	container      string
	config         *rest.Config // the admin's, or the break-glass responder's for a store's pod
	binary         string
	ip             string
	dialTimeout    time.Duration
}

func (p *prober) String() string { return p.name }

// exec runs netprobe with args and streams its standard output to stdout.
func (p *prober) exec(ctx context.Context, stdout io.Writer, args ...string) error {
	req := clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(p.namespace).Name(p.pod).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: p.container,
		Command:   append([]string{p.binary}, args...),
		Stdout:    true,
		Stderr:    true,
	}, clientgoscheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(p.config, "GET", req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(p.config, "POST", req.URL())
	if err != nil {
		return err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("exec netprobe %s in %s/%s: %w (stderr: %s)", strings.Join(args, " "), p.namespace, p.pod, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// run execs netprobe with args and reads the one result it prints.
func (p *prober) run(args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := p.exec(ctx, &out, args...); err != nil {
		return result{}, err
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return result{}, fmt.Errorf("netprobe %s printed %q: %w", args[0], out.String(), err)
	}
	return r, nil
}

// dial makes one TCP connection attempt from the pod to addr.
func (p *prober) dial(addr string) (result, error) {
	timeout := p.dialTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	r, err := p.run("dial", "-addr", addr, "-timeout", timeout.String())
	if err == nil {
		GinkgoWriter.Printf("%s %s -> %s\n", time.Now().UTC().Format("15:04:05.000"), p, r)
	}
	return r, err
}

// lookup resolves name at a DNS server from the pod.
func (p *prober) lookup(server, name string) (result, error) {
	r, err := p.run("dns", "-server", server, "-name", name)
	if err == nil {
		GinkgoWriter.Printf("%s -> dns %s: %v %s\n", p, r.Addr, r.Answers, r.Error)
	}
	return r, err
}

// expectOpen: the pod connects to addr (soon: a policy may take a moment to
// reach the network plugin).
func (p *prober) expectOpen(addr, why string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		r, err := p.dial(addr)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.Open).To(BeTrue(), "%s -> %s", p, r)
	}).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(), "%s -> %s must connect: %s", p, addr, why)
}

// expectRefused: the pod's connection attempt to addr fails, now and
// during a few more attempts.
func (p *prober) expectRefused(addr, why string) {
	GinkgoHelper()
	Consistently(func(g Gomega) {
		r, err := p.dial(addr)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.Open).To(BeFalse(), "%s -> %s", p, r)
	}).WithTimeout(3*time.Second).WithPolling(time.Second).Should(Succeed(), "%s -> %s must be refused: %s", p, addr, why)
}

// watchOptions bound a netprobe watch.
type watchOptions struct {
	interval, timeout, duration time.Duration
	stopAfterClosed             int
}

// watch runs netprobe watch from the pod in the background and delivers its
// results as they come. The channel closes when the watch ends; its error,
// if any, then arrives on errc.
func (p *prober) watch(ctx context.Context, addr string, o watchOptions) (<-chan result, <-chan error) {
	results := make(chan result, 1024)
	errc := make(chan error, 1)
	pr, pw := io.Pipe()
	go func() {
		err := p.exec(ctx, pw, "watch", "-addr", addr, "-interval", o.interval.String(), "-timeout", o.timeout.String(),
			"-duration", o.duration.String(), "-stop-after-closed", strconv.Itoa(o.stopAfterClosed))
		_ = pw.CloseWithError(err)
		errc <- err
	}()
	go func() {
		defer close(results)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var r result
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				continue
			}
			results <- r
		}
	}()
	return results, errc
}

// hostPort joins an IP and a port.
func hostPort(ip string, port int32) string { return net.JoinHostPort(ip, strconv.Itoa(int(port))) }
