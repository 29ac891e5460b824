// The Java recipe of the README's "Apps and connection pools": a HikariCP
// pool over MariaDB Connector/J whose every new connection logs in with
// the token `portcullis agent` keeps in a file. Run by
// integration/apps_test.go with Debian's libhikaricp-java and
// libmariadb-java, as a single-file program:
//   java -cp HikariCP.jar:mariadb-java-client.jar:slf4j-api.jar:slf4j-nop.jar Pool.java \
//     JDBC_URL USER TOKEN_FILE SECONDS EVICT_EVERY_MS
// It queries from 2 threads and prints one JSON line of counts.
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;
import javax.sql.DataSource;

public class Pool {
    // --- recipe ---
    /** A DataSource whose every connection logs in with the token file's current token. */
    static final class TokenFileDataSource implements DataSource {
        private final String url, user;
        private final Path tokenFile;

        TokenFileDataSource(String url, String user, Path tokenFile) {
            this.url = url;
            this.user = user;
            this.tokenFile = tokenFile;
        }

        @Override
        public Connection getConnection() throws SQLException {
            Properties p = new Properties();
            p.setProperty("user", user);
            try {
                p.setProperty("password", Files.readString(tokenFile, StandardCharsets.UTF_8).trim());
            } catch (java.io.IOException e) {
                throw new SQLException("read the portcullis token file " + tokenFile + ": " + e.getMessage(), "28000", e);
            }
            return DriverManager.getConnection(url, p);
        }

        @Override public Connection getConnection(String u, String pw) throws SQLException { return getConnection(); }
        @Override public PrintWriter getLogWriter() { return null; }
        @Override public void setLogWriter(PrintWriter out) {}
        @Override public void setLoginTimeout(int seconds) { DriverManager.setLoginTimeout(seconds); }
        @Override public int getLoginTimeout() { return DriverManager.getLoginTimeout(); }
        @Override public Logger getParentLogger() throws SQLFeatureNotSupportedException { throw new SQLFeatureNotSupportedException(); }
        @Override public <T> T unwrap(Class<T> iface) throws SQLException { throw new SQLException("not a wrapper"); }
        @Override public boolean isWrapperFor(Class<?> iface) { return false; }
    }

    static HikariDataSource pool(String url, String user, Path tokenFile) {
        HikariConfig c = new HikariConfig();
        c.setDataSource(new TokenFileDataSource(url, user, tokenFile));
        c.setMaximumPoolSize(2);
        // HikariCP's floor is 30 s. With end_at_token_expiry keep it below
        // a third of the token lifetime (tokens of 15 min: 4 min).
        c.setMaxLifetime(30_000);
        // Keep trying for 30 s at start rather than fail at once: beside a
        // starting agent, the first token may not be there yet.
        c.setInitializationFailTimeout(30_000);
        return new HikariDataSource(c);
    }
    // --- end of recipe ---

    public static void main(String[] args) throws Exception {
        String url = args[0], user = args[1];
        Path tokenFile = Path.of(args[2]);
        long seconds = Long.parseLong(args[3]), evictEvery = Long.parseLong(args[4]);
        HikariDataSource ds = pool(url, user, tokenFile);
        // Tokens in the tests live seconds, below HikariCP's 30 s floor of
        // maxLifetime: evicting on a schedule stands in for it.
        ScheduledExecutorService evictor = Executors.newSingleThreadScheduledExecutor();
        evictor.scheduleAtFixedRate(() -> ds.getHikariPoolMXBean().softEvictConnections(), evictEvery, evictEvery, TimeUnit.MILLISECONDS);

        AtomicLong queries = new AtomicLong();
        List<String> failures = new ArrayList<>();
        Set<String> users = new TreeSet<>();
        String[] driverVersion = {"?"};
        long end = System.currentTimeMillis() + seconds * 1000;
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Thread t = new Thread(() -> {
                while (System.currentTimeMillis() < end) {
                    try (Connection conn = ds.getConnection(); ResultSet rs = conn.createStatement().executeQuery("SELECT CURRENT_USER()")) {
                        rs.next();
                        synchronized (users) {
                            users.add(rs.getString(1));
                            driverVersion[0] = conn.getMetaData().getDriverVersion();
                        }
                    } catch (SQLException e) {
                        synchronized (failures) { failures.add(java.time.LocalTime.now() + " " + e.getMessage().split("\n")[0]); }
                    }
                    queries.incrementAndGet();
                    try { Thread.sleep(40); } catch (InterruptedException e) { return; }
                }
            });
            t.start();
            workers.add(t);
        }
        for (Thread t : workers) t.join();
        evictor.shutdownNow();
        ds.close();
        StringBuilder out = new StringBuilder("{\"queries\":" + queries.get() + ",\"client\":\"HikariCP " + System.getProperty("hikaricp.version", "?")
            + ", MariaDB Connector/J " + driverVersion[0] + ", Java " + System.getProperty("java.version") + "\",\"users\":[");
        int n = 0;
        for (String u : users) out.append(n++ > 0 ? "," : "").append('"').append(u).append('"');
        out.append("],\"failures\":[");
        n = 0;
        for (String f : failures) out.append(n++ > 0 ? "," : "").append('"').append(f.replace("\\", "\\\\").replace("\"", "'")).append('"');
        out.append("]}");
        System.out.println(out);
    }
}
