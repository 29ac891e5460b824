-- Failed local logins (wrong password or code), per account and per
-- address, so every node sharing the store counts against one budget.
-- Rows older than an hour are deleted as new ones arrive.
CREATE TABLE IF NOT EXISTS login_failures (
	failure_key VARBINARY(1100) NOT NULL,
	at          BIGINT          NOT NULL,
	KEY login_failures_key_at (failure_key, at),
	KEY login_failures_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
