"""One connection through portcullis with a Python driver, for the client
matrix in integration/clients_test.go.

usage: /usr/bin/python3 client.py pymysql|MySQLdb

Settings come from the environment (the token never goes on argv):
PC_HOST, PC_PORT, PC_USER, PC_PASSWORD, PC_DB (optional), PC_QUERY,
PC_TLS (verify: check the certificate against PC_CA and the host name;
skip: encrypt without checking; off: no TLS) and PC_CA.

Prints the query's first value; on failure prints "ERROR <code>: <message>"
on stderr and exits 1.
"""
import os
import ssl
import sys
import tempfile


def env(name):
    return os.environ.get(name, "")


def run_pymysql():
    import pymysql

    tls = env("PC_TLS")
    if tls == "verify":
        sslopt = {"ca": env("PC_CA")}  # PyMySQL then checks the chain and the host name
    elif tls == "skip":
        sslopt = {"verify_mode": ssl.CERT_NONE, "check_hostname": False}
    else:
        sslopt = None
    try:
        conn = pymysql.connect(host=env("PC_HOST"), port=int(env("PC_PORT")), user=env("PC_USER"),
                               password=env("PC_PASSWORD"), database=env("PC_DB") or None, ssl=sslopt,
                               connect_timeout=10)
        with conn.cursor() as cur:
            cur.execute(env("PC_QUERY"))
            print(cur.fetchone()[0])
    except pymysql.err.MySQLError as e:
        fail(e.args[0], e.args[1] if len(e.args) > 1 else "")


def run_mysqldb():
    import MySQLdb

    # mysqlclient 1.4 has no ssl_mode: ssl={...} sets the CA, and the host
    # name check is libmariadb's ssl-verify-server-cert, read from an
    # option file.
    tls = env("PC_TLS")
    kwargs = {}
    opts = "[client]\n"
    if tls == "verify":
        kwargs["ssl"] = {"ca": env("PC_CA")}
        opts += "ssl-verify-server-cert\n"
    elif tls == "skip":
        opts += "ssl\n"
    else:
        opts += "skip-ssl\n"
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as f:
        f.write(opts)
    try:
        conn = MySQLdb.connect(host=env("PC_HOST"), port=int(env("PC_PORT")), user=env("PC_USER"),
                               passwd=env("PC_PASSWORD"), db=env("PC_DB"), connect_timeout=10,
                               read_default_file=f.name, read_default_group="client", **kwargs)
        cur = conn.cursor()
        cur.execute(env("PC_QUERY"))
        print(cur.fetchone()[0])
    except MySQLdb.MySQLError as e:
        fail(e.args[0], e.args[1] if len(e.args) > 1 else "")
    finally:
        os.unlink(f.name)


def fail(code, message):
    print("ERROR %s: %s" % (code, message), file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    {"pymysql": run_pymysql, "MySQLdb": run_mysqldb}[sys.argv[1]]()
