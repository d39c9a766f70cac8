package bench

import (
	"testing"
	"time"
)

func TestParseCPUTime(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{
			name: "a plain command name",
			stat: "4242 (dossierguard) S 1 4242 4242 0 -1 4194560 9519 0 0 0 1234 567 0 0 20 0 14 0 123456 1234567890 12345 18446744073709551615",
			want: 18010 * time.Millisecond,
		},
		{
			name: "a command name with spaces and parentheses",
			stat: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 10 0 0 20 0 1 0 1 1 1",
			want: 150 * time.Millisecond,
		},
		{name: "no command name", stat: "7 a R 1", wantErr: true},
		{name: "cut short", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 5", wantErr: true},
		{name: "not a number", stat: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 10 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUTime(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseCPUTime: error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseCPUTime = %v, want %v", got, tc.want)
			}
		})
	}
}
