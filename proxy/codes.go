package proxy

// Error codes the proxy sends for its own failures. Every one is a server
// error code: libmariadb (Connector/C 3.3.9 and later: the mariadb CLI,
// mysqlclient, sysbench) refuses an ERR packet from a server whose code is
// in a client library's range (2000-2999, 5000-5999) and shows 2027
// "Received malformed packet" instead of the message, since a real server
// never sends those. So an unreachable backend is 1429, not the client's
// own 2003; wire.ErrPacket enforces the ranges for every sender.
const (
	codeBackendUnreachable uint16 = 1429 // ER_CONNECT_TO_FOREIGN_DATA_SOURCE: cannot reach or log in to the backend
	codeBackendTLS         uint16 = 1429 // the same: TLS to the backend failed
	codeConnectionKilled   uint16 = 1927 // MariaDB's ER_CONNECTION_KILLED
	codeBackendLost        uint16 = 1158 // ER_NET_READ_ERROR: the backend ended a relaying session
)
