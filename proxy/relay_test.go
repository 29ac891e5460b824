package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// TestCopiersMoveEveryByte: both copiers, which take buffers only while
// bytes flow, pass exactly what they get: a stream with writes of every
// size (1 byte to 100 KiB, around the 1 KiB and 16 KiB buffers) through
// the backend-to-client copier, and pipelined command packets, including
// ones that arrive while the proxy waits idle and a 100 KiB one, through
// the client-to-backend copier. Both run over TLS on the client leg, as
// in production, so neither is the kernel's splice.
func TestCopiersMoveEveryByte(t *testing.T) {
	t.Run("backend to client", func(t *testing.T) {
		backendSide, proxyBackend := tcpPair(t)
		proxyClient, clientSide := tlsPair(t)
		var want bytes.Buffer
		var chunks [][]byte
		for _, n := range []int{1, 100, 1023, 1024, 1025, 4096, 16383, 16384, 16385, 100 << 10, 7, 1024} {
			chunk := make([]byte, n)
			rand.Read(chunk)
			want.Write(chunk)
			chunks = append(chunks, chunk)
		}
		go func() {
			for _, chunk := range chunks {
				backendSide.Write(chunk)
				time.Sleep(time.Millisecond) // let some reads come back short
			}
			backendSide.Close()
		}()
		done := make(chan error, 1)
		go func() {
			_, err := copyToClient(proxyClient, proxyBackend, proxyBackend)
			proxyClient.Close()
			done <- err
		}()
		got, err := io.ReadAll(clientSide)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("client got %d bytes, want the %d the backend sent, unchanged", len(got), want.Len())
		}
	})
	t.Run("client to backend", func(t *testing.T) {
		proxyClient, clientSide := tlsPair(t)
		proxyBackend, backendSide := tcpPair(t)
		s := &Server{Sessions: newRegistry()}
		go s.copyClientToBackend(&Session{Identity: "a@example.com"}, proxyClient, proxyBackend, nil)
		packet := func(payload []byte) []byte {
			return append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), 0}, payload...)
		}
		var want []byte
		// A 100 KiB query is read whole by the guard and forwarded as it came.
		big := append([]byte("SELECT '"), bytes.Repeat([]byte("abc;def "), 100<<10/8)...)
		big = append(big, '\'')
		bursts := [][][]byte{
			{append([]byte{0x03}, "SELECT 1"...), append([]byte{0x03}, "SELECT 2"...)}, // pipelined
			{append([]byte{0x03}, big...)},
			{{0x0e}}, // COM_PING
		}
		var writes [][]byte
		for _, burst := range bursts {
			var b []byte
			for _, p := range burst {
				b = append(b, packet(p)...)
			}
			want = append(want, b...)
			writes = append(writes, b)
		}
		go func() {
			for _, b := range writes {
				clientSide.Write(b)
				time.Sleep(5 * time.Millisecond) // the proxy goes idle between bursts
			}
		}()
		got := make([]byte, len(want))
		backendSide.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(backendSide, got); err != nil {
			t.Fatalf("backend got %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the backend did not get the client's packets unchanged")
		}
	})
}

// tlsPair returns the server and client ends of a TLS connection over
// loopback TCP, handshake done.
func tlsPair(t testing.TB) (server, client net.Conn) {
	cfg, _, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	rawServer, rawClient := tcpPair(t)
	s := tls.Server(rawServer, cfg)
	c := tls.Client(rawClient, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test's own certificate
	errs := make(chan error, 1)
	go func() { errs <- s.Handshake() }()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return s, c
}
