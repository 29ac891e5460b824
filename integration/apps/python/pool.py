#!/usr/bin/python3
"""The SQLAlchemy recipes of the README's "Apps and connection pools": pools
whose every new connection logs in with the token `portcullis agent` keeps
fresh. Run by integration/apps_test.go (Debian's python3-sqlalchemy,
python3-pymysql, python3-mysqldb):

    pool.py pymysql|mysqldb HOST PORT USER TOKEN_FILE OPTION_FILE CA_FILE SECONDS RECYCLE

It queries from 2 threads and prints one JSON line of counts.
"""
import json
import sys
import threading
import time
from urllib.parse import quote_plus

import sqlalchemy
from sqlalchemy import create_engine, event, text

driver, host, port, user, token_file, option_file, ca_file, seconds, recycle = sys.argv[1:]


# --- recipe: PyMySQL, a do_connect event reads the token file ---
def pymysql_engine():
    engine = create_engine(
        f"mysql+pymysql://{quote_plus(user)}@{host}:{port}/",
        connect_args={"ssl": {"ca": ca_file}},  # TLS, verifying the proxy's certificate
        pool_size=2,
        pool_pre_ping=True,  # a session the proxy ended is replaced, not handed out
        pool_recycle=float(recycle),  # with end_at_token_expiry: below a third of the token lifetime
    )

    @event.listens_for(engine, "do_connect")
    def provide_token(dialect, conn_rec, cargs, cparams):
        with open(token_file) as f:
            cparams["password"] = f.read().strip()

    return engine


# --- recipe: mysqlclient, a creator opens each connection from the option file ---
def mysqldb_engine():
    import MySQLdb

    # libmariadb reads the agent's option file (user, token, host, port,
    # TLS with ssl-ca and ssl-verify-server-cert) at every connect.
    return create_engine(
        "mysql+mysqldb://",
        creator=lambda: MySQLdb.connect(read_default_file=option_file),
        pool_size=2,
        pool_pre_ping=True,
        pool_recycle=float(recycle),
    )
# --- end of recipes ---


def main():
    engine = pymysql_engine() if driver == "pymysql" else mysqldb_engine()
    if driver == "pymysql":
        import pymysql
        client = "PyMySQL " + pymysql.__version__
    else:
        import MySQLdb
        client = "mysqlclient " + MySQLdb.__version__
    stats = {"queries": 0, "failures": [], "users": set(),
             "client": f"SQLAlchemy {sqlalchemy.__version__}, {client}, Python {sys.version.split()[0]}"}
    lock = threading.Lock()
    end = time.time() + float(seconds)

    def worker():
        while time.time() < end:
            try:
                with engine.connect() as c:
                    u = c.execute(text("SELECT CURRENT_USER()")).scalar()
                with lock:
                    stats["users"].add(u)
            except Exception as e:  # every failure counts
                with lock:
                    stats["failures"].append(time.strftime("%H:%M:%S ") + str(e).splitlines()[0])
            with lock:
                stats["queries"] += 1
            time.sleep(0.04)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    stats["users"] = sorted(stats["users"])
    print(json.dumps(stats))


main()
