-- One connection through portcullis with sysbench's MySQL driver
-- (libmariadb), for the client matrix in integration/clients_test.go:
-- sysbench runs this file as a script, with the --mysql-* options of its
-- command line, and prints the query's first value. With --mysql-ssl=on it
-- reads cacert.pem, client-cert.pem and client-key.pem from its working
-- directory.
local con = sysbench.sql.driver():connect()
print(con:query_row(os.getenv("PC_QUERY")))
