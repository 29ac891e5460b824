// Package tunnel is `portcullis tunnel`: a listener on the loopback
// interface that GUI tools (DBeaver, Workbench, TablePlus) connect to with
// no password, and that forwards each connection to the portcullis proxy
// over TLS with a fresh token, so no tool ever holds a token or sees one
// expire.
//
// It terminates the MySQL handshake locally and opens its own
// authenticated connection to the proxy; the capabilities of the two legs
// agree because the local greeting mirrors the proxy's and the proxy gets
// the local client's own capabilities, collation, database and
// attributes:
//
//	tool (127.0.0.1)               tunnel                          proxy
//	  |                               | ---- TCP --------------------> |
//	  |                               | <--- greeting (caps, version) - |
//	  | <-- greeting (same caps, no SSL;                               |
//	  |     mysql_native_password) -- |                                |
//	  | --- HandshakeResponse41 ----> |  (any user, any password:      |
//	  |   [AuthSwitch to native, if   |   only loopback peers reach it)|
//	  |    the tool chose another]    |                                |
//	  |                               | ---- SSLRequest (tool's caps) > |
//	  |                               | <=========== TLS =============> |
//	  |                               | ---- HandshakeResponse41: user  |
//	  |                               |      identity[/role], token by  |
//	  |                               |      mysql_clear_password ----> |
//	  |                               | <--- OK (or ERR) -------------- |
//	  | <-- that OK (or ERR) -------- |                                |
//	  | <============ raw relay, both ways, until either side ends ====> |
//
// The token comes from the caller (Options.Token) for each connection:
// the CLI's cache, renewed with the login's refresh token when needed.
package tunnel
