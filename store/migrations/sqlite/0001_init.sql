-- The first portcullis schema, SQLite flavour. Times are INTEGER Unix
-- microseconds, UTC. *_key columns hold the lowercased name so uniqueness is
-- case-insensitive whatever the collation.

CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	user_name     TEXT    NOT NULL,
	user_name_key TEXT    NOT NULL UNIQUE,
	external_id   TEXT    NOT NULL,
	display_name  TEXT    NOT NULL,
	given_name    TEXT    NOT NULL,
	family_name   TEXT    NOT NULL,
	emails        TEXT    NOT NULL,
	active        INTEGER NOT NULL,
	role          TEXT    NOT NULL,
	source        TEXT    NOT NULL,
	extra         BLOB,
	version       INTEGER NOT NULL,
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL
) STRICT;
CREATE INDEX users_created ON users (created, id);

CREATE TABLE directory_groups (
	id               TEXT    NOT NULL PRIMARY KEY,
	display_name     TEXT    NOT NULL,
	display_name_key TEXT    NOT NULL UNIQUE,
	external_id      TEXT    NOT NULL,
	extra            BLOB,
	version          INTEGER NOT NULL,
	created          INTEGER NOT NULL,
	updated          INTEGER NOT NULL
) STRICT;
CREATE INDEX directory_groups_created ON directory_groups (created, id);

CREATE TABLE group_members (
	group_id TEXT NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
	user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE teams (
	name    TEXT    NOT NULL PRIMARY KEY,
	group_names TEXT NOT NULL,
	roles   TEXT    NOT NULL,
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
	kid          TEXT    NOT NULL PRIMARY KEY,
	alg          TEXT    NOT NULL,
	private_key  BLOB    NOT NULL,
	public_jwk   BLOB    NOT NULL,
	created      INTEGER NOT NULL,
	active_until INTEGER,
	retire_after INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_tokens (
	id          TEXT    NOT NULL PRIMARY KEY,
	family_id   TEXT    NOT NULL,
	user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash        BLOB    NOT NULL UNIQUE,
	client_data BLOB,
	created     INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	used_at     INTEGER,
	revoked_at  INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
	hash       BLOB    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	family_id  TEXT    NOT NULL,
	data       BLOB,
	created    INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
) STRICT;
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE scim_tokens (
	id              TEXT    NOT NULL PRIMARY KEY,
	connection_name TEXT    NOT NULL UNIQUE,
	hash            BLOB    NOT NULL UNIQUE,
	created         INTEGER NOT NULL,
	last_used       INTEGER
) STRICT;

-- events.id comes from event_seq, bumped in the appending transaction, so
-- ids become visible in order (see AppendEvent).
CREATE TABLE event_seq (
	id      INTEGER NOT NULL PRIMARY KEY,
	last_id INTEGER NOT NULL
) STRICT;
INSERT INTO event_seq (id, last_id) VALUES (1, 0);

CREATE TABLE events (
	id      INTEGER NOT NULL PRIMARY KEY,
	kind    TEXT    NOT NULL,
	subject TEXT    NOT NULL,
	data    BLOB,
	created INTEGER NOT NULL
) STRICT;
CREATE INDEX events_created ON events (created);

CREATE TABLE ephemeral_users (
	backend_user TEXT    NOT NULL PRIMARY KEY,
	node         TEXT    NOT NULL,
	session_id   TEXT    NOT NULL,
	created      INTEGER NOT NULL
) STRICT;
