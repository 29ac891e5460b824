package config_test

import (
	"strings"
	"testing"

	"github.com/portcullisdb/portcullis/config"
)

// exchangeDoc is the base config with an exchange section whose rules are
// rules (YAML list items, each on its own line).
func exchangeDoc(rules ...string) string {
	return doc(nil) + `exchange:
  aws: {}
  gcp: {audience: "https://portcullis.test"}
  azure: {tenants: [{tenant_id: "aaaaaaaa-0000-0000-0000-000000000001", audience: "api://portcullis"}]}
  jwt_issuers: [corp]
  rules:
` + "    - " + strings.Join(rules, "\n    - ") + "\n"
}

func TestExchangeRuleValidation(t *testing.T) {
	const tid = "aaaaaaaa-0000-0000-0000-000000000001"
	tests := []struct {
		name string
		rule string
		want []string // substrings of the error; none: must load
	}{
		{name: "aws exact", rule: `{aws: {account: "123456789012", role: "etl-*"}, username: etl@svc}`},
		{name: "aws any account said explicitly", rule: `{aws: {account: any, role: deploy, regions: [eu-west-1]}, username: d@svc}`},
		{name: "azure by name", rule: `{azure: {tenant: "` + tid + `", subscription: s, resource_group: prod, name: billing}, username: b@svc}`},
		{name: "azure by object id", rule: `{azure: {tenant: "` + tid + `", object_id: "0b1f5c9e"}, username: b@svc}`},
		{name: "gcp", rule: `{gcp: {project: prod, service_account: "deploy", sub: "1100"}, username: d@svc}`},
		{name: "gcp email", rule: `{gcp: {email: "123-compute@developer.gserviceaccount.com"}, username: d@svc}`},
		{name: "jwt", rule: `{jwt: {issuer: corp, user: "batch-*@corp.example.com"}, username: n@svc}`},

		{name: "old identity string", rule: `{platform: azure, identity: "*/userAssignedIdentities/billing", username: b@svc}`,
			want: []string{"exchange.rules[0].identity: identity strings are no longer accepted", `azure: {tenant: "<tid>", subscription: "<sub>"`}},
		{name: "aws account missing", rule: `{aws: {role: x}, username: x@svc}`,
			want: []string{"exchange.rules[0].aws.account: is empty: name the account this rule grants, or write any"}},
		{name: "aws account wildcard", rule: `{aws: {account: "*", role: x}, username: x@svc}`,
			want: []string{`exchange.rules[0].aws.account: "*" has a wildcard`}},
		{name: "aws role as an ARN", rule: `{aws: {account: "123456789012", role: "arn:aws:iam::123456789012:role/x"}, username: x@svc}`,
			want: []string{"exchange.rules[0].aws.role:", "is an ARN or path"}},
		{name: "aws bad region", rule: `{aws: {account: "123456789012", role: x, regions: [mars]}, username: x@svc}`,
			want: []string{`exchange.rules[0].aws.regions[0]: "mars" is not an AWS region`}},
		{name: "azure tenant missing", rule: `{azure: {subscription: s, resource_group: g, name: billing}, username: b@svc}`,
			want: []string{"exchange.rules[0].azure.tenant: is empty"}},
		{name: "azure tenant not trusted", rule: `{azure: {tenant: other, subscription: s, resource_group: g, name: billing}, username: b@svc}`,
			want: []string{`exchange.rules[0].azure.tenant: "other" is not one of exchange.azure.tenants`}},
		{name: "azure subscription and group missing", rule: `{azure: {tenant: any, name: billing}, username: b@svc}`,
			want: []string{"exchange.rules[0].azure.subscription: is empty", "exchange.rules[0].azure.resource_group: is empty"}},
		{name: "gcp project missing", rule: `{gcp: {service_account: deploy}, username: d@svc}`,
			want: []string{"exchange.rules[0].gcp.project: is empty"}},
		{name: "gcp deploy@*", rule: `{gcp: {project: any, service_account: "deploy@*"}, username: d@svc}`,
			want: []string{`exchange.rules[0].gcp.service_account: "deploy@*" is an email`}},
		{name: "jwt user with a * in the domain", rule: `{jwt: {issuer: corp, user: "batch-*@*.example.com"}, username: n@svc}`,
			want: []string{`exchange.rules[0].jwt.user: "batch-*@*.example.com" has a * in its domain`}},
		{name: "jwt issuer not exchangeable", rule: `{jwt: {issuer: other, user: x}, username: d@svc}`,
			want: []string{`exchange.rules[0].jwt.issuer: "other" is not in exchange.jwt_issuers`}},
		{name: "no match block", rule: `{platform: aws, username: d@svc}`,
			want: []string{"exchange.rules[0]: names no identity: add one of aws:, azure:, gcp: or jwt:"}},
		{name: "two match blocks", rule: `{aws: {account: any, role: x}, gcp: {project: any, service_account: x}, username: d@svc}`,
			want: []string{"exchange.rules[0]: has more than one of"}},
		{name: "platform disagrees", rule: `{platform: gcp, aws: {account: any, role: x}, username: d@svc}`,
			want: []string{`exchange.rules[0].platform: is "gcp" but the rule's match block is aws`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(exchangeDoc(tt.rule)), "portcullis.yaml", t.TempDir())
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("does not load:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("loads; want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestExchangeRuleGrants: what serve --check prints for each rule says
// which parts are pinned and which are open to any value.
func TestExchangeRuleGrants(t *testing.T) {
	cfg, err := config.Parse([]byte(exchangeDoc(
		`{aws: {account: "123456789012", role: "etl-*"}, username: etl@svc, roles: [analyst], ttl: 10m}`,
		`{aws: {account: any, role: deploy}, username: d@svc}`,
		`{azure: {tenant: "aaaaaaaa-0000-0000-0000-000000000001", subscription: s1, resource_group: prod, name: billing}, username: b@svc}`,
		`{gcp: {project: prod, service_account: deploy}, username: g@svc}`,
		`{jwt: {issuer: corp, user: "batch-*@corp.example.com"}, username: n@svc}`,
	)), "portcullis.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`AWS roles matching "etl-*" (* stays within the role) in account 123456789012 (partition aws), any session name -> user etl@svc, roles [analyst], tokens up to 10m0s`,
		`AWS role deploy in ANY account (partition aws)`,
		`Azure user-assigned managed identity billing in resource group prod of subscription s1 in tenant aaaaaaaa-0000-0000-0000-000000000001 -> user b@svc`,
		`GCP service account deploy of project prod -> user g@svc`,
		`tokens of issuer corp for users matching "batch-*@corp.example.com"`,
	}
	for i, w := range want {
		if got := cfg.Exchange.Rules[i].Grants(); !strings.Contains(got, w) {
			t.Errorf("rule %d grants %q, want it to contain %q", i, got, w)
		}
	}
}

func TestExchangeAWSDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte(exchangeDoc(`{aws: {account: any, role: x}, username: x@svc}`)), "portcullis.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Exchange.AWS
	if a.Audience != cfg.Issuer.URL || a.MaxAge != config.DefaultAWSProofMaxAge || len(a.Regions) != 1 || a.Regions[0] != "us-east-1" {
		t.Fatalf("aws defaults: audience %q (issuer.url %q), max_age %v, regions %v", a.Audience, cfg.Issuer.URL, a.MaxAge, a.Regions)
	}
}

func TestExchangeRuleAnyParts(t *testing.T) {
	tests := []struct {
		rule config.ExchangeRule
		want string
	}{
		{config.ExchangeRule{AWS: &config.AWSMatch{Account: config.MatchAny, Role: "x"}}, "account"},
		{config.ExchangeRule{AWS: &config.AWSMatch{Account: "123456789012", Role: "x"}}, ""},
		{config.ExchangeRule{Azure: &config.AzureMatch{Tenant: "t", Subscription: config.MatchAny, ResourceGroup: config.MatchAny, Name: "n"}}, "subscription,resource_group"},
		{config.ExchangeRule{JWT: &config.JWTMatch{Issuer: "corp", User: config.MatchAny}}, "user"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.rule.AnyParts(), ","); got != tt.want {
			t.Errorf("%s: AnyParts = %q, want %q", tt.rule.Matches(), got, tt.want)
		}
	}
}

func TestExchangeAWSValidation(t *testing.T) {
	rule := `{aws: {account: any, role: x}, username: x@svc}`
	tests := []struct{ aws, want string }{
		{`{max_age: 20m}`, "exchange.aws.max_age: must be between 1s and 15m"},
		{`{max_age: -1s}`, "exchange.aws.max_age: must be between 1s and 15m"},
		{`{regions: [eu-west-1, "us_east_1"]}`, `exchange.aws.regions[1]: "us_east_1" is not an AWS region`},
		{`{sts_endpoint: "https://sts.eu-west-1.amazonaws.com", max_age: 2m}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.aws, func(t *testing.T) {
			yaml := strings.Replace(exchangeDoc(rule), "  aws: {}", "  aws: "+tt.aws, 1)
			cfg, err := config.Parse([]byte(yaml), "portcullis.yaml", t.TempDir())
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("does not load: %v", err)
			case tt.want == "":
				if got := cfg.Exchange.AWS.Regions; len(got) != 1 || got[0] != "eu-west-1" {
					t.Errorf("regions default to the endpoint's: %v", got)
				}
			case err == nil || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}
