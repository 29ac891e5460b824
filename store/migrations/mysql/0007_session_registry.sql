-- The cluster-wide session registry: each proxy process allocates
-- blocks of connection ids from session_id_seq (so ids never repeat
-- across nodes), records its live sessions in proxy_sessions and
-- heartbeats in proxy_nodes; a process that stopped heartbeating is
-- left out of lists and swept.
CREATE TABLE IF NOT EXISTS session_id_seq (
	id         INT    NOT NULL PRIMARY KEY,
	last_block BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO session_id_seq (id, last_block) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS proxy_nodes (
	instance  BIGINT         NOT NULL PRIMARY KEY,
	node      VARBINARY(255) NOT NULL,
	heartbeat BIGINT         NOT NULL,
	KEY proxy_nodes_heartbeat (heartbeat)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS proxy_sessions (
	id           BIGINT         NOT NULL PRIMARY KEY,
	instance     BIGINT         NOT NULL,
	node         VARBINARY(255) NOT NULL,
	identity     TEXT           NOT NULL,
	issuer       TEXT           NOT NULL,
	role         VARBINARY(255) NOT NULL,
	backend_user VARBINARY(255) NOT NULL,
	client_addr  VARBINARY(255) NOT NULL,
	login_id     VARBINARY(255) NOT NULL,
	started      BIGINT         NOT NULL,
	KEY proxy_sessions_instance (instance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Ended logins: a login (a refresh family, or a workload exchange) whose
-- access tokens are refused ("login:" + its id), or a person or workload
-- identity all of whose tokens issued before `at` are ("user:" + the
-- lowercased name).
CREATE TABLE IF NOT EXISTS logins_ended (
	ended_key VARBINARY(1100) NOT NULL PRIMARY KEY,
	user_name TEXT            NOT NULL,
	reason    TEXT            NOT NULL,
	at        BIGINT          NOT NULL,
	KEY logins_ended_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
