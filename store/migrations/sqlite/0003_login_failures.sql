-- Failed local logins (wrong password or code), per account and per
-- address, so every node sharing the store counts against one budget.
-- Rows older than an hour are deleted as new ones arrive.
CREATE TABLE login_failures (
	failure_key TEXT    NOT NULL,
	at          INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_key_at ON login_failures (failure_key, at);
CREATE INDEX login_failures_at ON login_failures (at);
