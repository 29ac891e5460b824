-- The first portcullis schema, MySQL/MariaDB flavour. Times are BIGINT Unix
-- microseconds, UTC. Ids, names compared for uniqueness (*_key, lowercased by
-- the store) and hashes are VARBINARY: byte comparison, no collation and no
-- trailing-space padding. MySQL commits DDL implicitly, so every statement is
-- written to be re-runnable (IF NOT EXISTS, INSERT IGNORE).

CREATE TABLE IF NOT EXISTS users (
	id            VARBINARY(255)  NOT NULL PRIMARY KEY,
	user_name     TEXT            NOT NULL,
	user_name_key VARBINARY(1024) NOT NULL,
	external_id   TEXT            NOT NULL,
	display_name  TEXT            NOT NULL,
	given_name    TEXT            NOT NULL,
	family_name   TEXT            NOT NULL,
	emails        MEDIUMTEXT      NOT NULL,
	active        BOOLEAN         NOT NULL,
	role          TEXT            NOT NULL,
	source        VARCHAR(32)     NOT NULL,
	extra         MEDIUMBLOB      NULL,
	version       BIGINT          NOT NULL,
	created       BIGINT          NOT NULL,
	updated       BIGINT          NOT NULL,
	UNIQUE KEY users_name_key (user_name_key),
	KEY users_created (created, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS directory_groups (
	id               VARBINARY(255)  NOT NULL PRIMARY KEY,
	display_name     TEXT            NOT NULL,
	display_name_key VARBINARY(1024) NOT NULL,
	external_id      TEXT            NOT NULL,
	extra            MEDIUMBLOB      NULL,
	version          BIGINT          NOT NULL,
	created          BIGINT          NOT NULL,
	updated          BIGINT          NOT NULL,
	UNIQUE KEY directory_groups_name_key (display_name_key),
	KEY directory_groups_created (created, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS group_members (
	group_id VARBINARY(255) NOT NULL,
	user_id  VARBINARY(255) NOT NULL,
	PRIMARY KEY (group_id, user_id),
	KEY group_members_user (user_id),
	CONSTRAINT group_members_group_fk FOREIGN KEY (group_id) REFERENCES directory_groups (id) ON DELETE CASCADE,
	CONSTRAINT group_members_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS teams (
	name    VARBINARY(255) NOT NULL PRIMARY KEY,
	group_names MEDIUMTEXT NOT NULL,
	roles   MEDIUMTEXT     NOT NULL,
	created BIGINT         NOT NULL,
	updated BIGINT         NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS signing_keys (
	kid          VARBINARY(255) NOT NULL PRIMARY KEY,
	alg          VARCHAR(16)    NOT NULL,
	private_key  BLOB           NOT NULL,
	public_jwk   BLOB           NOT NULL,
	created      BIGINT         NOT NULL,
	active_until BIGINT         NULL,
	retire_after BIGINT         NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS refresh_tokens (
	id          VARBINARY(255) NOT NULL PRIMARY KEY,
	family_id   VARBINARY(255) NOT NULL,
	user_id     VARBINARY(255) NOT NULL,
	hash        VARBINARY(64)  NOT NULL,
	client_data MEDIUMBLOB     NULL,
	created     BIGINT         NOT NULL,
	expires_at  BIGINT         NOT NULL,
	used_at     BIGINT         NULL,
	revoked_at  BIGINT         NULL,
	UNIQUE KEY refresh_tokens_hash (hash),
	KEY refresh_tokens_family (family_id),
	KEY refresh_tokens_user (user_id),
	KEY refresh_tokens_expires (expires_at),
	CONSTRAINT refresh_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS auth_codes (
	hash       VARBINARY(64)  NOT NULL PRIMARY KEY,
	user_id    VARBINARY(255) NOT NULL,
	family_id  VARBINARY(255) NOT NULL,
	data       MEDIUMBLOB     NULL,
	created    BIGINT         NOT NULL,
	expires_at BIGINT         NOT NULL,
	used_at    BIGINT         NULL,
	KEY auth_codes_expires (expires_at),
	CONSTRAINT auth_codes_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS scim_tokens (
	id              VARBINARY(255) NOT NULL PRIMARY KEY,
	connection_name VARBINARY(255) NOT NULL,
	hash            VARBINARY(64)  NOT NULL,
	created         BIGINT         NOT NULL,
	last_used       BIGINT         NULL,
	UNIQUE KEY scim_tokens_connection (connection_name),
	UNIQUE KEY scim_tokens_hash (hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- events.id comes from event_seq, bumped (and so row-locked) in the appending
-- transaction, so ids commit in order (see AppendEvent).
CREATE TABLE IF NOT EXISTS event_seq (
	id      INT    NOT NULL PRIMARY KEY,
	last_id BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO event_seq (id, last_id) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS events (
	id      BIGINT         NOT NULL PRIMARY KEY,
	kind    VARCHAR(255)   NOT NULL,
	subject TEXT           NOT NULL,
	data    MEDIUMBLOB     NULL,
	created BIGINT         NOT NULL,
	KEY events_created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ephemeral_users (
	backend_user VARBINARY(255) NOT NULL PRIMARY KEY,
	node         VARBINARY(255) NOT NULL,
	session_id   VARBINARY(255) NOT NULL,
	created      BIGINT         NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
