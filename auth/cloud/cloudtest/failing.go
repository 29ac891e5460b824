package cloudtest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Failure is how a FailingUpstream answers.
type Failure int32

// The failures a FailingUpstream can play.
const (
	// FailReset reads the request, then resets the connection (RST).
	FailReset Failure = iota
	// FailHang reads the request and never answers.
	FailHang
	// Fail503 answers 503 with an STS ServiceUnavailable error document.
	Fail503
	// Fail500Echo answers 500 with the whole request (URL, headers) as a
	// plain-text body, as a misbehaving proxy might.
	Fail500Echo
	// Fail400EchoXML answers 400 with an STS-shaped error document whose
	// Code and RequestId are the request URL.
	Fail400EchoXML
)

// FailingUpstream is an HTTP endpoint that fails in the way Mode says,
// for tests of what a caller logs when STS or a key set fails. Close
// makes it refuse connections (the service is down).
type FailingUpstream struct {
	URL  string
	Mode atomic.Int32 // a Failure
	ln   net.Listener
	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
}

// NewFailingUpstream starts one on 127.0.0.1; it stops at the end of the
// test.
func NewFailingUpstream(tb testing.TB) *FailingUpstream {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &FailingUpstream{URL: "http://" + ln.Addr().String(), ln: ln, done: make(chan struct{})}
	f.wg.Go(f.serve)
	tb.Cleanup(f.Close)
	return f
}

// Close stops listening: from then on connections are refused.
func (f *FailingUpstream) Close() {
	f.once.Do(func() {
		close(f.done)
		f.ln.Close()
	})
	f.wg.Wait()
}

func (f *FailingUpstream) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.handle(c) })
	}
}

func (f *FailingUpstream) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	switch Failure(f.Mode.Load()) {
	case FailReset:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	case FailHang:
		<-f.done
	case Fail503:
		writeRaw(c, 503, "text/xml", `<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>try later</Message></Error><RequestId>5e2c0a1b-0000-4000-8000-000000000001</RequestId></ErrorResponse>`)
	case Fail500Echo:
		var b []byte
		b = fmt.Appendf(b, "upstream failed for %s %s\n", req.Method, req.URL.String())
		for k, vs := range req.Header {
			for _, v := range vs {
				b = fmt.Appendf(b, "%s: %s\n", k, v)
			}
		}
		writeRaw(c, 500, "text/plain", string(b))
	case Fail400EchoXML:
		u := xmlText(req.URL.String())
		writeRaw(c, 400, "text/xml", `<ErrorResponse><Error><Code>`+u+`</Code><Message>`+u+`</Message></Error><RequestId>`+u+`</RequestId></ErrorResponse>`)
	}
}

func writeRaw(c net.Conn, status int, contentType, body string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), contentType, len(body), body)
}
