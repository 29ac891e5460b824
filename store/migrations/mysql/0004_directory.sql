-- Where each user and group came from (the SCIM or SSO connection, or
-- the external issuer, that may speak for it), the time before which no
-- token of the user counts (set when a deleted name is provisioned
-- again), deletion tombstones, and local credentials in a table of
-- their own. Re-runnable: the store skips an ADD COLUMN whose column
-- exists (MySQL commits DDL at once, so an interrupted run repeats it).
ALTER TABLE users ADD COLUMN source_name VARBINARY(255) NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE directory_groups ADD COLUMN connection_name VARBINARY(255) NOT NULL DEFAULT '';

-- Users and groups SCIM made before connections were recorded belong to
-- the one connection with a SCIM token, when there is exactly one (with
-- several, the first connection to write each one adopts it).
UPDATE users SET source_name = (SELECT MIN(connection_name) FROM scim_tokens)
	WHERE source = 'scim' AND source_name = '' AND (SELECT COUNT(*) FROM scim_tokens) = 1;
UPDATE directory_groups SET connection_name = (SELECT MIN(connection_name) FROM scim_tokens)
	WHERE connection_name = '' AND (SELECT COUNT(*) FROM scim_tokens) = 1;

CREATE TABLE IF NOT EXISTS tombstones (
	user_name_key VARBINARY(1024) NOT NULL PRIMARY KEY,
	user_name     TEXT            NOT NULL,
	source        VARCHAR(32)     NOT NULL,
	source_name   VARBINARY(255)  NOT NULL,
	deleted       BIGINT          NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS local_credentials (
	user_id VARBINARY(255) NOT NULL PRIMARY KEY,
	sealed  MEDIUMBLOB     NOT NULL,
	version BIGINT         NOT NULL,
	updated BIGINT         NOT NULL,
	CONSTRAINT local_credentials_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
