package limit_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/limit"
)

func TestOutageLogsOnceThenSummaries(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	o := limit.NewOutage(log, "poll event log", "store unreachable", 50*time.Millisecond)
	down := errors.New("connection refused")
	logged := 0
	for range 100 {
		if o.Failed(down) {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("100 failures in a burst logged %d lines, want 1:\n%s", logged, buf.String())
	}
	time.Sleep(60 * time.Millisecond)
	if !o.Failed(down) {
		t.Fatal("no summary after the interval")
	}
	if !strings.Contains(buf.String(), "poll event log: store unreachable for 0s, 101 attempts") {
		t.Fatalf("summary not as documented:\n%s", buf.String())
	}
	o.OK()
	if !strings.Contains(buf.String(), "recovered after") {
		t.Fatalf("no recovery line:\n%s", buf.String())
	}
	if !o.Failed(down) {
		t.Fatal("a new outage after recovery is not logged at once")
	}
}
