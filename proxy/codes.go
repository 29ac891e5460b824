package proxy

// Client-library error codes the proxy sends as server errors: the go-mysql
// constants stop at the server range, and clients print these as their
// familiar "can't connect" errors.
const (
	codeBackendUnreachable uint16 = 2003 // CR_CONN_HOST_ERROR
	codeBackendTLS         uint16 = 2026 // CR_SSL_CONNECTION_ERROR
	codeConnectionKilled   uint16 = 1927 // MariaDB's ER_CONNECTION_KILLED
	codeServerLost         uint16 = 2013 // CR_SERVER_LOST
)
