package netaddr_test

import (
	"net"
	"testing"

	"github.com/portcullisdb/portcullis/netaddr"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"LOCALHOST", true}, {"localhost.", true},
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"[::1]", true}, {"::ffff:127.0.0.1", true},
		{"", false}, {"0.0.0.0", false}, {"::", false}, {"10.0.0.1", false}, {"128.0.0.1", false},
		{"localhost.example.com", false}, {"127.example.com", false}, {"mylocalhost", false}, {"127.0.0.1.nip.io", false}, {"idp.test", false},
	}
	for _, tt := range tests {
		if got := netaddr.IsLoopback(tt.host); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestIsLoopbackHostPort(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:6060", true}, {"localhost:3307", true}, {"[::1]:0", true},
		{"0.0.0.0:6060", false}, {":6060", false}, {"127.0.0.1", false}, {"10.1.2.3:80", false},
	}
	for _, tt := range tests {
		if got := netaddr.IsLoopbackHostPort(tt.addr); got != tt.want {
			t.Errorf("IsLoopbackHostPort(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if !netaddr.IsLoopbackAddr(&net.TCPAddr{IP: net.IPv6loopback, Port: 1}) || netaddr.IsLoopbackAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}) || netaddr.IsLoopbackAddr(nil) {
		t.Error("IsLoopbackAddr")
	}
}

func TestHost(t *testing.T) {
	for addr, want := range map[string]string{"10.0.0.1:5555": "10.0.0.1", "[::1]:80": "::1", "pipe": "pipe", "@": "@"} {
		if got := netaddr.Host(addr); got != want {
			t.Errorf("Host(%q) = %q, want %q", addr, got, want)
		}
	}
}
