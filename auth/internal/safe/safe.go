// Package safe holds what the auth packages share for handling untrusted
// input: values from tokens made fit to quote in a refusal, and failed
// calls to the services we verify with (STS, key sets) worded without
// their URL or raw error. (Whether a host may be spoken to without TLS is
// netaddr.IsLoopback.)
package safe

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxPrintable is the longest token-supplied value put in a reason.
const MaxPrintable = 100

// Printable makes a client-supplied value safe to put in a reason: at most
// MaxPrintable bytes, cut on a rune boundary, marked when cut.
func Printable(s string) string { return Truncate(s, MaxPrintable) }

// Truncate cuts s to at most n bytes on a rune boundary, marked when cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// PrintableList bounds a client-supplied list for a reason.
func PrintableList(list []string) []string {
	const maxItems = 10
	out := make([]string, 0, min(len(list), maxItems+1))
	for i, s := range list {
		if i == maxItems {
			out = append(out, "... "+strconv.Itoa(len(list)-maxItems)+" more")
			break
		}
		out = append(out, Printable(s))
	}
	return out
}

// HumanDuration rounds d for a person: "45s", "3m", "5h", "3d".
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if s := d.Round(time.Second); s < time.Minute {
		return fmt.Sprintf("%ds", max(s/time.Second, 1))
	}
	if m := d.Round(time.Minute); m < time.Hour {
		return fmt.Sprintf("%dm", m/time.Minute)
	}
	if h := d.Round(time.Hour); h < 48*time.Hour {
		return fmt.Sprintf("%dh", h/time.Hour)
	}
	return fmt.Sprintf("%dd", d.Round(24*time.Hour)/(24*time.Hour))
}
