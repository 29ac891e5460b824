package proxy

import (
	"net"
	"testing"
)

func TestAddressKey(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"IPv4 is the address", "192.0.2.7:3306", "192.0.2.7"},
		{"IPv4-mapped IPv6 is the IPv4 address", "[::ffff:192.0.2.7]:3306", "192.0.2.7"},
		{"IPv6 is its /64", "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:3306", "2001:db8:1:2::/64"},
		{"another host of the same /64 shares it", "[2001:db8:1:2::1]:1", "2001:db8:1:2::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := net.ResolveTCPAddr("tcp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := addressKey(a); got != tt.want {
				t.Fatalf("addressKey(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
}

func TestBudgets(t *testing.T) {
	b := newBudgets(3, 2, 1)
	a1, _ := net.ResolveTCPAddr("tcp", "192.0.2.1:1")
	a2, _ := net.ResolveTCPAddr("tcp", "192.0.2.2:1")
	x, err := b.admit(a1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.admit(a1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.admit(a1); err == nil {
		t.Fatal("a third handshake from one address was admitted past max_handshakes_per_address 2")
	}
	y, err := b.admit(a2)
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	if _, err := b.admit(a2); err == nil {
		t.Fatal("a fourth handshake was admitted past max_handshakes 3")
	}
	if err := x.promote(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.admit(a2); err != nil {
		t.Fatalf("a promoted connection still holds its handshake slot: %v", err)
	}
	if err := y.promote(); err == nil {
		t.Fatal("a second session was admitted past max_connections 1")
	}
	x.release()
	if err := y.promote(); err != nil {
		t.Fatalf("after a session ended: %v", err)
	}
}
