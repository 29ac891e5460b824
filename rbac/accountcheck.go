package rbac

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/config"
)

// escapePrivileges are the global privileges that let a session on a
// shared (static) account escape the proxy: change accounts or grants,
// see or end other sessions, act as another user, or reach the server's
// files.
var escapePrivileges = []string{"ALL PRIVILEGES", "SUPER", "CREATE USER", "GRANT OPTION", "PROCESS", "CONNECTION ADMIN",
	"SET USER", "FILE", "SHUTDOWN", "RELOAD", "BINLOG ADMIN", "REPLICATION MASTER ADMIN", "READ_ONLY ADMIN", "ROLE_ADMIN",
	"SYSTEM_USER", "SYSTEM_VARIABLES_ADMIN", "CONNECTION_ADMIN"}

// CheckAccounts logs in as each static role's backend account and
// returns a warning for each that holds privileges letting a person
// escape what the proxy enforces (CREATE USER, GRANT OPTION, SUPER,
// PROCESS, CONNECTION ADMIN, ..., or any privilege on the mysql schema),
// or that accepts logins from any host ('%'). A warning names the role,
// the account and the privilege, never a password or a grant line.
func CheckAccounts(ctx context.Context, cfg *config.Config, b BackendLogin) []string {
	var warnings []string
	rolesOf := map[string][]string{} // backend account -> its static roles, sorted
	names := make([]string, 0, len(cfg.Roles))
	for name := range cfg.Roles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if r := cfg.Roles[name]; r.Plan == config.PlanStatic {
			rolesOf[r.BackendUser] = append(rolesOf[r.BackendUser], "roles."+name)
		}
	}
	for _, name := range names {
		r := cfg.Roles[name]
		if r.Plan == config.PlanStatic {
			continue
		}
		if w, err := checkManager(ctx, b, r); err == nil && w != "" {
			warnings = append(warnings, fmt.Sprintf("roles.%s: managing account %s %s", name, r.BackendUser, w))
		}
	}
	for _, first := range names {
		r := cfg.Roles[first]
		if r.Plan != config.PlanStatic || rolesOf[r.BackendUser][0] != "roles."+first {
			continue
		}
		name := strings.TrimPrefix(strings.Join(rolesOf[r.BackendUser], ", "), "roles.")
		w, err := checkAccount(ctx, b, r)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("roles.%s: could not check the privileges of backend account %s: %v", name, r.BackendUser, err))
			continue
		}
		for _, x := range w {
			warnings = append(warnings, fmt.Sprintf("roles.%s: backend account %s %s", name, r.BackendUser, x))
		}
	}
	return warnings
}

// checkManager looks at the managing account of an ephemeral or per_user
// role: without PROCESS and CONNECTION ADMIN (or SUPER) it cannot end the
// connections of the users it drops or locks, so a direct connection
// opened with such a user's password would stay open.
func checkManager(ctx context.Context, b BackendLogin, r config.Role) (string, error) {
	lines, _, err := showGrants(ctx, b, r)
	if err != nil {
		return "", err
	}
	var global []string
	for _, l := range lines {
		global = append(global, globalPrivileges(l)...)
	}
	all := contains(global, "ALL PRIVILEGES") || contains(global, "ALL")
	if all || contains(global, "PROCESS") && (contains(global, "CONNECTION ADMIN") || contains(global, "SUPER")) {
		return "", nil
	}
	return "lacks PROCESS and CONNECTION ADMIN on *.*: it cannot end the connections of the users it drops or locks, so a direct connection with their password would stay open", nil
}

// globalPrivileges are the privileges a SHOW GRANTS line gives on *.*.
func globalPrivileges(line string) []string {
	rest, ok := strings.CutPrefix(strings.ToUpper(line), "GRANT ")
	if !ok {
		return nil
	}
	privs, scope, ok := strings.Cut(rest, " ON ")
	if !ok {
		return nil
	}
	scope, _, _ = strings.Cut(scope, " TO ")
	if strings.ReplaceAll(strings.TrimSpace(scope), "`", "") != "*.*" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(privs, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// BackendLogin is how the check reaches the backend, as the proxy does:
// its address, backend.tls, and backend.public_key_file's key (nil: none).
type BackendLogin struct {
	Address   string
	TLS       *tls.Config
	PublicKey *rsa.PublicKey
}

// backendKeyName registers BackendLogin.PublicKey with the driver.
const backendKeyName = "portcullis-backend"

// driverConfig is go-sql-driver's config for logging in to the backend as
// user, the way the proxy does.
func (b BackendLogin) driverConfig(user, password string) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.TLS = user, password, "tcp", b.Address, b.TLS
	if b.PublicKey != nil { // MySQL 8 without TLS: encrypt to the configured key, never ask for one
		mysql.RegisterServerPubKey(backendKeyName, b.PublicKey)
		c.ServerPubKey = backendKeyName
	}
	c.Timeout = 5 * time.Second
	return c
}

// showGrants logs in as the role's account and returns its SHOW GRANTS
// lines and CURRENT_USER().
func showGrants(ctx context.Context, b BackendLogin, r config.Role) (lines []string, current string, err error) {
	c := b.driverConfig(r.BackendUser, r.BackendPassword.Value())
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, "", err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&current); err != nil {
		return nil, "", unwrapMySQL(err)
	}
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return nil, "", unwrapMySQL(err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, "", err
		}
		lines = append(lines, line)
	}
	return lines, current, rows.Err()
}

func checkAccount(ctx context.Context, b BackendLogin, r config.Role) ([]string, error) {
	lines, current, err := showGrants(ctx, b, r)
	if err != nil {
		return nil, err
	}
	var warnings []string
	found := map[string]bool{}
	for _, line := range lines {
		for _, w := range grantWarnings(line) {
			if !found[w] {
				found[w] = true
				warnings = append(warnings, w)
			}
		}
	}
	if strings.HasSuffix(current, "@%") {
		warnings = append(warnings, "accepts logins from any host ('%'): limit it to the proxy's addresses, so its password is no use elsewhere")
	}
	return warnings, nil
}

// grantWarnings reads one SHOW GRANTS line ("GRANT <privileges> ON
// <scope> TO ... [WITH GRANT OPTION]") for privileges that escape.
func grantWarnings(line string) []string {
	upper := strings.ToUpper(line)
	var out []string
	if strings.Contains(upper, "WITH GRANT OPTION") {
		out = append(out, "holds GRANT OPTION: it can give its privileges to other accounts")
	}
	rest, ok := strings.CutPrefix(upper, "GRANT ")
	if !ok {
		return out
	}
	privs, scope, ok := strings.Cut(rest, " ON ")
	if !ok {
		return out // a role grant: GRANT role TO user
	}
	scope, _, _ = strings.Cut(scope, " TO ")
	scope = strings.ReplaceAll(strings.TrimSpace(scope), "`", "")
	global := scope == "*.*"
	onMySQL := strings.HasPrefix(scope, "MYSQL.")
	for _, p := range strings.Split(privs, ",") {
		p = strings.TrimSpace(p)
		switch {
		case global && contains(escapePrivileges, p):
			out = append(out, "holds "+p+" on *.*: a session could change accounts, see or end other people's sessions, or act as another user")
		case onMySQL && p != "USAGE":
			out = append(out, "holds "+p+" on the mysql schema, where accounts and grants live")
		case global && p == "ALL":
			out = append(out, "holds ALL on *.*")
		}
	}
	return out
}

func unwrapMySQL(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Errorf("%d %s", me.Number, me.Message)
	}
	return err
}
