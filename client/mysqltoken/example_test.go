package mysqltoken_test

import (
	"crypto/tls"
	"database/sql"
	"log"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/client"
	"github.com/portcullisdb/portcullis/client/mysqltoken"
)

// An app on Kubernetes exchanges its projected service-account token for
// portcullis tokens; every new connection of the pool gets a valid one.
func Example() {
	src := client.Source{Server: "https://portcullis.example.com", JWTFile: "/var/run/secrets/portcullis/token"}
	if err := src.Validate(); err != nil {
		log.Fatal(err)
	}
	tokens := mysqltoken.New(src, mysqltoken.Options{Role: "reader"})

	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", "portcullis.example.com:3306", "app"
	cfg.TLS = &tls.Config{ServerName: "portcullis.example.com"}
	connector, err := tokens.NewConnector(cfg)
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetConnMaxIdleTime(5 * time.Minute) // no max lifetime needed: connections retire with their token
	defer db.Close()
}

// With a mysql.Config of your own (here from a DSN), BeforeConnect sets
// each new connection's user and token; `portcullis agent` keeps the
// token file fresh beside the app.
func ExampleTokens_BeforeConnect() {
	cfg, err := mysql.ParseDSN("app@svc/reader@tcp(127.0.0.1:3306)/app?tls=true")
	if err != nil {
		log.Fatal(err)
	}
	tokens := mysqltoken.New(client.Source{TokenFile: "/run/portcullis/token"}, mysqltoken.Options{})
	if err := cfg.Apply(mysql.BeforeConnect(tokens.BeforeConnect)); err != nil {
		log.Fatal(err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetConnMaxLifetime(4 * time.Minute) // below a third of the token lifetime, if the role has end_at_token_expiry
	defer db.Close()
}
