-- Where each user and group came from (the SCIM or SSO connection, or
-- the external issuer, that may speak for it), the time before which no
-- token of the user counts (set when a deleted name is provisioned
-- again), deletion tombstones, and local credentials in a table of
-- their own.
ALTER TABLE users ADD COLUMN source_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE directory_groups ADD COLUMN connection_name TEXT NOT NULL DEFAULT '';

-- Users and groups SCIM made before connections were recorded belong to
-- the one connection with a SCIM token, when there is exactly one (with
-- several, the first connection to write each one adopts it).
UPDATE users SET source_name = (SELECT MIN(connection_name) FROM scim_tokens)
	WHERE source = 'scim' AND source_name = '' AND (SELECT COUNT(*) FROM scim_tokens) = 1;
UPDATE directory_groups SET connection_name = (SELECT MIN(connection_name) FROM scim_tokens)
	WHERE connection_name = '' AND (SELECT COUNT(*) FROM scim_tokens) = 1;

CREATE TABLE tombstones (
	user_name_key TEXT    NOT NULL PRIMARY KEY,
	user_name     TEXT    NOT NULL,
	source        TEXT    NOT NULL,
	source_name   TEXT    NOT NULL,
	deleted       INTEGER NOT NULL
) STRICT;

CREATE TABLE local_credentials (
	user_id TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	sealed  BLOB    NOT NULL,
	version INTEGER NOT NULL,
	updated INTEGER NOT NULL
) STRICT;
