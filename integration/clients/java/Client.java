// One connection through portcullis with MariaDB Connector/J, for the
// client matrix in integration/clients_test.go. Settings come from the
// environment (see ../python/client.py); prints the query's first value,
// or "ERROR <code>: <message>" on stderr and exits 1.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

public class Client {
    static String env(String name) {
        String v = System.getenv(name);
        return v == null ? "" : v;
    }

    public static void main(String[] args) {
        Properties p = new Properties();
        p.setProperty("user", env("PC_USER"));
        p.setProperty("password", env("PC_PASSWORD"));
        p.setProperty("connectTimeout", "10000");
        switch (env("PC_TLS")) {
            case "verify": // the chain against this CA, and the host name
                p.setProperty("useSsl", "true");
                p.setProperty("serverSslCert", env("PC_CA"));
                break;
            case "skip":
                p.setProperty("useSsl", "true");
                p.setProperty("trustServerCertificate", "true");
                break;
            default:
                p.setProperty("useSsl", "false");
        }
        String url = "jdbc:mariadb://" + env("PC_HOST") + ":" + env("PC_PORT") + "/" + env("PC_DB");
        try (Connection c = DriverManager.getConnection(url, p);
             ResultSet rs = c.createStatement().executeQuery(env("PC_QUERY"))) {
            rs.next();
            System.out.println(rs.getString(1));
        } catch (SQLException e) {
            System.err.println("ERROR " + e.getErrorCode() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
