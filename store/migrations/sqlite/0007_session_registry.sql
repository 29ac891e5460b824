-- The cluster-wide session registry: each proxy process allocates
-- blocks of connection ids from session_id_seq (so ids never repeat
-- across nodes), records its live sessions in proxy_sessions and
-- heartbeats in proxy_nodes; a process that stopped heartbeating is
-- left out of lists and swept.
CREATE TABLE session_id_seq (
	id         INTEGER NOT NULL PRIMARY KEY,
	last_block INTEGER NOT NULL
) STRICT;
INSERT INTO session_id_seq (id, last_block) VALUES (1, 0);

CREATE TABLE proxy_nodes (
	instance  INTEGER NOT NULL PRIMARY KEY,
	node      TEXT    NOT NULL,
	heartbeat INTEGER NOT NULL
) STRICT;
CREATE INDEX proxy_nodes_heartbeat ON proxy_nodes (heartbeat);

CREATE TABLE proxy_sessions (
	id           INTEGER NOT NULL PRIMARY KEY,
	instance     INTEGER NOT NULL,
	node         TEXT    NOT NULL,
	identity     TEXT    NOT NULL,
	issuer       TEXT    NOT NULL,
	role         TEXT    NOT NULL,
	backend_user TEXT    NOT NULL,
	client_addr  TEXT    NOT NULL,
	login_id     TEXT    NOT NULL,
	started      INTEGER NOT NULL
) STRICT;
CREATE INDEX proxy_sessions_instance ON proxy_sessions (instance);

-- Ended logins: a login (a refresh family, or a workload exchange) whose
-- access tokens are refused ("login:" + its id), or a person or workload
-- identity all of whose tokens issued before `at` are ("user:" + the
-- lowercased name).
CREATE TABLE logins_ended (
	ended_key TEXT    NOT NULL PRIMARY KEY,
	user_name TEXT    NOT NULL,
	reason    TEXT    NOT NULL,
	at        INTEGER NOT NULL
) STRICT;
CREATE INDEX logins_ended_at ON logins_ended (at);
