package proxy

import (
	"io"
	"net"
	"testing"
)

// BenchmarkCopyClientToBackend measures the client-to-backend copier per
// command packet (a 40-byte COM_QUERY): the per-packet work of the relay's
// only parsing direction. allocs/op must be 0 in steady state.
func BenchmarkCopyClientToBackend(b *testing.B) {
	clientSide, proxyClient := tcpPair(b)
	proxyBackend, backendSide := tcpPair(b)
	go io.Copy(io.Discard, backendSide)
	s := &Server{Sessions: newRegistry()}
	sess := &Session{Identity: "bench@example.com"}
	done := make(chan struct{})
	go func() {
		s.copyClientToBackend(sess, proxyClient, proxyBackend, nil)
		close(done)
	}()
	query := "SELECT id, name FROM items WHERE id = 42"
	pkt := append([]byte{byte(len(query) + 1), 0, 0, 0, 0x03}, query...)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := clientSide.Write(pkt); err != nil {
			b.Fatal(err)
		}
	}
	clientSide.Close()
	<-done
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}
