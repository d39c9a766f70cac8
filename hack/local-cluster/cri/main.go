// Command cri is the local cluster's minimal CRI client (crictl is not on the
// Go module proxy): it lists pod sandboxes and stops and removes all of them
// through the runtime, so the runtime runs each pod's CNI DEL (veth, IP
// address, port mappings) and stops its containers the proper way.
//
//	cri -endpoint unix:///path/containerd.sock pods
//	cri -endpoint unix:///path/containerd.sock stop-all [-timeout 60s]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	endpoint := flag.String("endpoint", "", "CRI endpoint, unix:///path/to.sock (required)")
	timeout := flag.Duration("timeout", 90*time.Second, "overall time limit")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: cri -endpoint unix:///path.sock pods|stop-all")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *endpoint == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	target := *endpoint
	if !strings.HasPrefix(target, "unix://") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)

	switch flag.Arg(0) {
	case "pods":
		err = pods(ctx, rt)
	case "stop-all":
		err = stopAll(ctx, rt)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "cri:", err)
	os.Exit(1)
}

func pods(ctx context.Context, rt runtimeapi.RuntimeServiceClient) error {
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return err
	}
	running := map[string]int{}
	for _, c := range cs.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running[c.PodSandboxId]++
		}
	}
	fmt.Printf("%-13s %-20s %-40s %-8s %s\n", "POD ID", "STATE", "NAME", "RUNNING", "NAMESPACE")
	for _, p := range resp.Items {
		fmt.Printf("%-13.13s %-20s %-40s %-8d %s\n", p.Id, p.State, p.Metadata.GetName(), running[p.Id], p.Metadata.GetNamespace())
	}
	return nil
}

func stopAll(ctx context.Context, rt runtimeapi.RuntimeServiceClient) error {
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var failed []string
	for _, p := range resp.Items {
		name := p.Metadata.GetNamespace() + "/" + p.Metadata.GetName()
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			failed = append(failed, fmt.Sprintf("stop %s: %v", name, err))
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			failed = append(failed, fmt.Sprintf("remove %s: %v", name, err))
			continue
		}
		fmt.Printf("removed pod %s (%.13s)\n", name, p.Id)
	}
	// Containers whose sandbox is already gone.
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return err
	}
	for _, c := range cs.Containers {
		_, _ = rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 5})
		if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
			failed = append(failed, fmt.Sprintf("remove container %.13s: %v", c.Id, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d failures:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}
