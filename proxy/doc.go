// Package proxy is the MySQL wire server side of portcullis: the listener,
// TLS on the client leg, the handshake that captures a token as the
// password, the backend login with the role's credentials, the relay and
// the session registry. It knows nothing of HTTP; it reaches identity and
// roles through two small interfaces, TokenVerifier and RoleResolver.
//
// The client-facing handshake is written here rather than taken from
// go-mysql's server package: that package advertises fixed capabilities
// (no CLIENT_DEPRECATE_EOF, no multi-statements), numbers connections with
// its own counter and has no handshake timeout, and a raw relay needs the
// client and backend legs to agree exactly. The backend leg is hand-written
// for the same reason: it re-sends the client's own capabilities,
// collation, max packet size and attributes, which go-mysql's client
// cannot. The packet codec both legs use (and the CLI's tunnel too) is
// package proxy/wire; go-mysql still provides the protocol constants and
// scrambles.
//
//	client                         portcullis                        backend
//	  | <---- greeting (backend's version, caps, collation;          |
//	  |       proxy conn id; plugin caching_sha2_password) --------  |
//	  | ---- SSLRequest -------------> |                             |
//	  | <=========== TLS ============> |                             |
//	  | ---- HandshakeResponse41 ----> |  (user = identity[/role])   |
//	  | <---- 0x01 0x04 (full auth) -- |  or AuthSwitch to           |
//	  | ---- token, in the clear ----> |  mysql_clear_password       |
//	  |                                | verify token, match user,   |
//	  |                                | resolve role                |
//	  |                                | ---- TCP (+TLS) ----------> |
//	  |                                | <--- greeting ------------- |
//	  |                                | ---- client's response,     |
//	  |                                |      role's user + scramble>|
//	  |                                | <--- OK (or ERR) ---------- |
//	  | <---- the backend's OK ------- |                             |
//	  | <========== raw relay, both ways, until either side ends ==> |
//
// Every failure before the relay leaves through serveConn's refuse, which
// writes one ERR packet (1045 for auth, 2003 for an unreachable backend,
// the backend's own code when it refuses) and one audit line. The relay's
// client-to-backend copier tracks packet boundaries only to refuse
// COM_CHANGE_USER and to translate `KILL [QUERY] <proxy id>` to the
// backend thread; the backend-to-client direction is a plain copy.
//
// Floods and limits: a connection holds a slot of the handshake budget
// (Options.MaxHandshakes, and MaxHandshakesPerAddress per IPv4 address or
// IPv6 /64) until its token and role check pass, and only then a session
// slot (MaxConnections); see budgets in admit.go. The first packet must
// come within FirstPacketTimeout. An accept that fails (EMFILE, ENFILE,
// ENOBUFS, ...) never ends Serve: it backs off 5ms doubling to 1s, is
// counted and logged once then summarised, and at the fd limit a spare
// descriptor answers the waiting clients with an ERR packet. Shutdown
// closes the listener, waits for sessions until its context ends, then
// ends the rest saying why.
package proxy
