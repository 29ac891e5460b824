-- The runtime state of IdP connections an administrator set in the
-- console (enabled, enforce MFA). A connection without a row has the state
-- its config file gives it.
CREATE TABLE IF NOT EXISTS connection_settings (
	connection_name VARBINARY(255)  NOT NULL PRIMARY KEY,
	enabled         BOOLEAN         NOT NULL,
	enforce_mfa     BOOLEAN         NOT NULL,
	updated_by      VARBINARY(1024) NOT NULL,
	updated         BIGINT          NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
