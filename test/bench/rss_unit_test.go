package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseRSSKinds(t *testing.T) {
	status := "Name:\tdossierguard\nVmHWM:\t  140000 kB\nVmRSS:\t  130000 kB\nRssAnon:\t   84568 kB\nRssFile:\t   47912 kB\nRssShmem:\t       0 kB\n"
	if anon, file := parseRSSKinds(status); anon != 84568 || file != 47912 {
		t.Errorf("anon %d, file %d kB; want 84568, 47912", anon, file)
	}
	if anon, file := parseRSSKinds("Name:\tx\n"); anon != 0 || file != 0 {
		t.Errorf("without the fields: %d, %d", anon, file)
	}
}

// TestSampleRSS samples this process, which has both kinds of pages.
func TestSampleRSS(t *testing.T) {
	p := sampleRSS(os.Getpid(), 10*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	anon, file := p.finish()
	if anon <= 0 || file <= 0 {
		t.Errorf("peaks anon %d, file %d bytes; want both above zero", anon, file)
	}
}
