// Package integration holds the end-to-end tests: the whole product
// started in-process on random ports, the real MariaDB on 127.0.0.1:3306
// as backend, and real clients (go-sql-driver/mysql, the mariadb CLI).
// The tests fail loudly when MariaDB is missing (`make test` starts or
// installs it); `go test -short` is the only way to skip them.
package integration
