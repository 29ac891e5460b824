package mysqltoken_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/portcullisdb/portcullis/client"
	"github.com/portcullisdb/portcullis/client/mysqltoken"
)

func TestRefusesATokenWithoutTLS(t *testing.T) {
	tokens := mysqltoken.New(client.Source{TokenFile: "/nonexistent"}, mysqltoken.Options{})
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", "127.0.0.1:1"
	if _, err := tokens.NewConnector(cfg); err == nil || !strings.Contains(err.Error(), "needs TLS") {
		t.Fatalf("NewConnector without TLS: %v", err)
	}
	if err := tokens.BeforeConnect(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "needs TLS") {
		t.Fatalf("BeforeConnect without TLS: %v", err)
	}
}
