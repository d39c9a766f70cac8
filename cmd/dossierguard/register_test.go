package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRegisterExportRefusesBadFlags: a format other than csv or html, or a
// language other than nl or en, is a usage error naming the flag, before
// any cluster is contacted.
func TestRegisterExportRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		opts registerOptions
		flag string
	}{
		{registerOptions{format: "xlsx", lang: "nl"}, "--format"},
		{registerOptions{format: "html", lang: "de"}, "--lang"},
		{registerOptions{format: "csv", lang: "de"}, "--lang"},
	} {
		var out bytes.Buffer
		tc.opts.kubeconfig = "/nonexistent"
		err := runRegisterExport(context.Background(), tc.opts, &out)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.flag) || out.Len() != 0 {
			t.Errorf("%+v: err %v, %d bytes written; want a usage error naming %s and nothing written", tc.opts, err, out.Len(), tc.flag)
		}
	}
}
