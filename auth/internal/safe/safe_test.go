package safe

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	if got := Truncate("short", 10); got != "short" {
		t.Fatalf("%q", got)
	}
	long := strings.Repeat("é", 80) // 160 bytes
	got := Printable(long)
	if !strings.HasSuffix(got, "...") || len(got) > MaxPrintable+3 || !utf8.ValidString(got) {
		t.Fatalf("Printable(%d bytes) = %d bytes, valid %v", len(long), len(got), utf8.ValidString(got))
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second: "45s", 3 * time.Minute: "3m", -5 * time.Hour: "5h", 72 * time.Hour: "3d", 100 * time.Millisecond: "1s",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
