-- The runtime state of IdP connections an administrator set in the
-- console (enabled, enforce MFA). A connection without a row has the state
-- its config file gives it.
CREATE TABLE connection_settings (
	connection_name TEXT    NOT NULL PRIMARY KEY,
	enabled         INTEGER NOT NULL,
	enforce_mfa     INTEGER NOT NULL,
	updated_by      TEXT    NOT NULL,
	updated         INTEGER NOT NULL
) STRICT;
