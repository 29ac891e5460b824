package netaddr

import (
	"net"
	"strings"
)

// IsLoopback reports whether host, a name or an IP (brackets allowed),
// is this machine: "localhost" (any case, a trailing dot allowed; RFC
// 6761 keeps it off the network), or an IP in 127.0.0.0/8 or ::1,
// IPv4-mapped forms included. Any other name is not, whatever it
// resolves to now: a resolver can change its answer.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackHostPort reports whether addr is host:port with a loopback
// host (IsLoopback).
func IsLoopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && IsLoopback(host)
}

// IsLoopbackAddr reports whether a connection's address (its peer, as
// net.Conn.RemoteAddr gives it) is on this machine.
func IsLoopbackAddr(a net.Addr) bool {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	return a != nil && IsLoopbackHostPort(a.String())
}

// Host is a client's address without its port, the key of per-address
// budgets and the client_addr of audit events; an address without a
// port is returned as it is.
func Host(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
