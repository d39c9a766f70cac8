package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRegisterExportRefusesAnUnknownFormat: a format other than csv is a
// usage error naming the flag, before any cluster is contacted.
func TestRegisterExportRefusesAnUnknownFormat(t *testing.T) {
	var out bytes.Buffer
	err := runRegisterExport(context.Background(), registerOptions{format: "xlsx", kubeconfig: "/nonexistent"}, &out)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--format") || out.Len() != 0 {
		t.Fatalf("err %v, %d bytes written; want a usage error naming --format and nothing written", err, out.Len())
	}
}
