package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MatchAny is the value a rule writes, in a part that is otherwise
// required (tenant, account, project, subscription, resource group,
// issuer), to match every value of that part on purpose.
const MatchAny = "any"

// PatternSeparators are the characters a * in a rule never matches: a
// wildcard stays inside one part of an identity ("etl-*" never reaches past
// a "/", ":" or "@" into another account, resource or domain). In a user
// name a * may stand only before the "@": the domain is written out.
const PatternSeparators = "/:@"

// AWSMatch names the parts of an AWS identity a rule grants. The caller
// is an assumed-role session (arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION)
// or an IAM user (arn:PARTITION:iam::ACCOUNT:user/PATH/NAME).
type AWSMatch struct {
	Partition string `yaml:"partition"` // default aws (aws-cn, aws-us-gov)
	Account   string `yaml:"account"`   // required: the 12-digit account id, or any
	// Role is the IAM role name (not its ARN); * within the name. Role
	// names are unique in an account whatever their path, and an
	// assumed-role ARN carries no path, so none is matched.
	Role    string   `yaml:"role"`
	User    string   `yaml:"user"`    // instead of role: an IAM user name; * within the name
	Session string   `yaml:"session"` // default any session name; * within the name
	Regions []string `yaml:"regions"` // default exchange.aws.regions: the regions the proof may be signed for
}

// AzureMatch names the parts of an Entra ID workload identity a rule
// grants: a user-assigned managed identity by tenant, subscription,
// resource group and name, or any identity by its object id.
type AzureMatch struct {
	Tenant        string `yaml:"tenant"`         // required: a tenant_id of exchange.azure.tenants, or any
	Subscription  string `yaml:"subscription"`   // with name: required, the subscription id, or any
	ResourceGroup string `yaml:"resource_group"` // with name: required, or any
	Name          string `yaml:"name"`           // the user-assigned managed identity's name; * within the name
	ObjectID      string `yaml:"object_id"`      // instead of the three above: the identity's object id (oid), exact
}

// GCPMatch names the parts of a Google service account a rule grants.
type GCPMatch struct {
	// Project and ServiceAccount match <service_account>@<project>.iam.gserviceaccount.com.
	Project        string `yaml:"project"`         // with service_account: required, the project id, or any
	ServiceAccount string `yaml:"service_account"` // the account id before "@"; * within it
	// Email instead matches one exact address, for Google-managed accounts
	// such as 123456789012-compute@developer.gserviceaccount.com.
	Email string `yaml:"email"`
	Sub   string `yaml:"sub"` // default any: the account's unique id (the token's sub), exact
	Azp   string `yaml:"azp"` // default any: the token's azp, exact
	HD    string `yaml:"hd"`  // default any: the token's hd (Workspace domain), exact
}

// JWTMatch names the parts of a token of a configured issuer a rule
// grants.
type JWTMatch struct {
	Issuer string `yaml:"issuer"` // required: a name in exchange.jwt_issuers, or any
	// User is the token's user name (its username claim); * within the
	// part before "@" only, so "batch-*" never matches
	// batch-x@evil.example.com and the domain is always written out; any
	// grants every user of the issuer.
	User    string `yaml:"user"`
	Subject string `yaml:"subject"` // default any: the token's sub, exact
}

// retiredKey explains a key that no longer exists, when the config still
// uses it; ok is false for other unknown keys.
func retiredKey(path, key string) (string, bool) {
	if key == "identity" && strings.HasPrefix(path, "exchange.rules[") && !strings.Contains(strings.TrimPrefix(path, "exchange.rules["), ".") {
		return `identity strings are no longer accepted: a * in them crossed accounts, tenants and projects. ` +
			`Name the parts instead, e.g. aws: {account: "123456789012", role: "etl-*"}, ` +
			`azure: {tenant: "<tid>", subscription: "<sub>", resource_group: "<rg>", name: "billing"}, ` +
			`gcp: {project: "<project>", service_account: "deploy"}, jwt: {issuer: "batch", user: "nightly@corp.example.com"} ` +
			`(README, Workloads)`, true
	}
	return "", false
}

var (
	awsAccountRE = regexp.MustCompile(`^[0-9]{12}$`)
	awsRegionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// rulePlatform is the platform a rule's match block names, or "" when it
// names none or several.
func (r ExchangeRule) rulePlatform() string {
	var set []string
	if r.AWS != nil {
		set = append(set, "aws")
	}
	if r.Azure != nil {
		set = append(set, "azure")
	}
	if r.GCP != nil {
		set = append(set, "gcp")
	}
	if r.JWT != nil {
		set = append(set, "jwt")
	}
	if len(set) != 1 {
		return ""
	}
	return set[0]
}

// matchProblems checks the match block of rule key: which parts it names,
// and that every wildcard stays within its part.
func (c *Config) matchProblems(key string, r ExchangeRule) []problem {
	var probs []problem
	bad := func(k, msg string) { probs = append(probs, problem{key: key + k, msg: msg}) }
	blocks := 0
	for _, b := range []bool{r.AWS != nil, r.Azure != nil, r.GCP != nil, r.JWT != nil} {
		if b {
			blocks++
		}
	}
	switch {
	case blocks == 0:
		bad("", "names no identity: add one of aws:, azure:, gcp: or jwt: with the parts this rule grants")
		return probs
	case blocks > 1:
		bad("", "has more than one of aws:, azure:, gcp:, jwt:: a rule matches one platform; split it")
		return probs
	case r.Platform != "" && r.Platform != r.rulePlatform():
		bad(".platform", fmt.Sprintf("is %q but the rule's match block is %s:: drop platform or make them agree", r.Platform, r.rulePlatform()))
	}
	id := func(k, v, what string) { // a required id: exact or any
		switch {
		case v == "":
			bad(k, fmt.Sprintf("is empty: name the %s this rule grants, or write any to grant every %s", what, what))
		case strings.Contains(v, "*"):
			bad(k, fmt.Sprintf("%q has a wildcard: a %s is matched exactly; write it out, or write any to grant every %s", v, what, what))
		}
	}
	exact := func(k, v string) {
		if strings.Contains(v, "*") {
			bad(k, fmt.Sprintf("%q has a wildcard: it is matched exactly", v))
		}
	}
	switch {
	case r.AWS != nil:
		m := r.AWS
		if m.Account != MatchAny {
			id(".aws.account", m.Account, "account")
			if m.Account != "" && !strings.Contains(m.Account, "*") && !awsAccountRE.MatchString(m.Account) {
				bad(".aws.account", fmt.Sprintf("%q is not a 12-digit AWS account id", m.Account))
			}
		}
		if !slices.Contains([]string{"", "aws", "aws-cn", "aws-us-gov"}, m.Partition) {
			bad(".aws.partition", fmt.Sprintf("%q is not a partition: use aws, aws-cn or aws-us-gov", m.Partition))
		}
		switch {
		case m.Role == "" && m.User == "":
			bad(".aws.role", "is empty: name the IAM role (or user:) this rule grants; * within the name")
		case m.Role != "" && m.User != "":
			bad(".aws", "names both role and user: a rule grants one kind of caller; split it")
		}
		for _, p := range []struct{ k, v string }{{".aws.role", m.Role}, {".aws.user", m.User}, {".aws.session", m.Session}} {
			if strings.ContainsAny(p.v, ":") || (p.k != ".aws.user" && strings.Contains(p.v, "/")) {
				bad(p.k, fmt.Sprintf("%q is an ARN or path: write the name only (account: and partition: are their own keys)", p.v))
			}
		}
		for i, reg := range m.Regions {
			if !awsRegionRE.MatchString(reg) {
				bad(".aws.regions["+strconv.Itoa(i)+"]", fmt.Sprintf("%q is not an AWS region such as eu-west-1", reg))
			}
		}
	case r.Azure != nil:
		m := r.Azure
		if m.Tenant != MatchAny {
			id(".azure.tenant", m.Tenant, "tenant")
			if az := c.Exchange.Azure; m.Tenant != "" && az != nil && !slices.ContainsFunc(az.Tenants, func(t AzureTenant) bool { return strings.EqualFold(t.TenantID, m.Tenant) }) {
				bad(".azure.tenant", fmt.Sprintf("%q is not one of exchange.azure.tenants: add it there or fix the id", m.Tenant))
			}
		}
		switch {
		case m.ObjectID != "":
			exact(".azure.object_id", m.ObjectID)
			if m.Name != "" || m.Subscription != "" || m.ResourceGroup != "" {
				bad(".azure", "names object_id and subscription/resource_group/name: the object id alone names the identity; keep one form")
			}
		case m.Name == "":
			bad(".azure.name", "is empty: name the user-assigned managed identity (with subscription and resource_group), or give its object_id")
		default:
			if m.Subscription != MatchAny {
				id(".azure.subscription", m.Subscription, "subscription")
			}
			if m.ResourceGroup != MatchAny {
				id(".azure.resource_group", m.ResourceGroup, "resource group")
			}
			if strings.ContainsAny(m.Name, "/") {
				bad(".azure.name", fmt.Sprintf("%q is a resource id or path: write the identity's name only", m.Name))
			}
		}
	case r.GCP != nil:
		m := r.GCP
		switch {
		case m.Email != "":
			exact(".gcp.email", m.Email)
			if m.ServiceAccount != "" || m.Project != "" {
				bad(".gcp", "names email and project/service_account: keep one form")
			}
			if !strings.Contains(m.Email, "@") {
				bad(".gcp.email", fmt.Sprintf("%q is not an email address", m.Email))
			}
		case m.ServiceAccount == "":
			bad(".gcp.service_account", "is empty: name the service account id (before @) with project:, or give one exact email:")
		default:
			if m.Project != MatchAny {
				id(".gcp.project", m.Project, "project")
			}
			if strings.ContainsAny(m.ServiceAccount, "@.") {
				bad(".gcp.service_account", fmt.Sprintf("%q is an email: write the id before @ and the project in project:, or use email: for one exact address", m.ServiceAccount))
			}
		}
		exact(".gcp.sub", m.Sub)
		exact(".gcp.azp", m.Azp)
		exact(".gcp.hd", m.HD)
	case r.JWT != nil:
		m := r.JWT
		if m.Issuer != MatchAny {
			id(".jwt.issuer", m.Issuer, "issuer")
			if m.Issuer != "" && !slices.Contains(c.Exchange.JWTIssuers, m.Issuer) {
				bad(".jwt.issuer", fmt.Sprintf("%q is not in exchange.jwt_issuers: use one of %s", m.Issuer, listOrNone(c.Exchange.JWTIssuers)))
			}
		}
		if m.User == "" && m.Subject == "" {
			bad(".jwt.user", "is empty: name the user (the token's user name; * before the @ only) or the subject this rule grants")
		}
		if _, domain, ok := strings.Cut(m.User, "@"); ok && strings.Contains(domain, "*") {
			bad(".jwt.user", fmt.Sprintf("%q has a * in its domain: a wildcard there would let in users of other domains; write the domain out", m.User))
		}
		exact(".jwt.subject", m.Subject)
	}
	return probs
}

// Grants says in words what rule r grants, for `serve --check`, start-up
// and the operator reading the config: which identities it matches and
// what they get.
func (r ExchangeRule) Grants() string {
	return fmt.Sprintf("%s -> user %s, roles [%s], tokens up to %v", r.Matches(), r.Username, strings.Join(r.Roles, ", "), r.TTL)
}

// Matches says in words which identities rule r matches.
func (r ExchangeRule) Matches() string {
	part := func(what, v string) string {
		switch {
		case v == MatchAny:
			return "ANY " + what
		case strings.Contains(v, "*"):
			return what + "s matching " + strconv.Quote(v) + " (* stays within the " + what + ")"
		default:
			return what + " " + v
		}
	}
	switch {
	case r.AWS != nil:
		m := r.AWS
		partition := m.Partition
		if partition == "" {
			partition = "aws"
		}
		kind, name := "role", m.Role
		if m.User != "" {
			kind, name = "IAM user", m.User
		}
		s := "AWS " + part(kind, name) + " in " + part("account", m.Account) + " (partition " + partition + ")"
		if m.Session != "" {
			s += ", " + part("session name", m.Session)
		} else if m.User == "" {
			s += ", any session name"
		}
		if len(m.Regions) > 0 {
			s += ", proofs signed for " + strings.Join(m.Regions, " or ")
		}
		return s
	case r.Azure != nil:
		m := r.Azure
		if m.ObjectID != "" {
			return "Azure identity with object id " + m.ObjectID + " in " + part("tenant", m.Tenant)
		}
		return "Azure user-assigned managed " + part("identity", m.Name) + " in " + part("resource group", m.ResourceGroup) +
			" of " + part("subscription", m.Subscription) + " in " + part("tenant", m.Tenant)
	case r.GCP != nil:
		m := r.GCP
		var s string
		if m.Email != "" {
			s = "GCP service account " + m.Email
		} else {
			s = "GCP " + part("service account", m.ServiceAccount) + " of " + part("project", m.Project)
		}
		for _, e := range []struct{ k, v string }{{"sub", m.Sub}, {"azp", m.Azp}, {"hd", m.HD}} {
			if e.v != "" {
				s += ", " + e.k + " " + e.v
			}
		}
		return s
	case r.JWT != nil:
		m := r.JWT
		s := "tokens of " + part("issuer", m.Issuer)
		if m.User != "" {
			s += " for " + part("user", m.User)
		}
		if m.Subject != "" {
			s += " with subject " + m.Subject
		}
		return s
	}
	return "nothing"
}

// stsRegion is the region an STS endpoint verifies signatures for:
// sts.REGION.amazonaws.com(.cn) names it; the global endpoint and any other
// host (a VPC endpoint, a test fake) are us-east-1.
func stsRegion(endpoint string) string {
	host := endpoint
	if _, rest, ok := strings.Cut(endpoint, "://"); ok {
		host = rest
	}
	host, _, _ = strings.Cut(host, "/")
	labels := strings.Split(host, ".")
	if len(labels) >= 4 && labels[0] == "sts" && labels[2] == "amazonaws" && awsRegionRE.MatchString(labels[1]) {
		return labels[1]
	}
	return "us-east-1"
}

// awsProblems checks exchange.aws beyond its defaults.
func (c *Config) awsProblems() []problem {
	a := c.Exchange.AWS
	if a == nil {
		return nil
	}
	var probs []problem
	if a.MaxAge <= 0 || a.MaxAge > 15*time.Minute {
		probs = append(probs, problem{key: "exchange.aws.max_age", msg: "must be between 1s and 15m (the life of a signed AWS request): a proof older than this is refused"})
	}
	for i, reg := range a.Regions {
		if !awsRegionRE.MatchString(reg) {
			probs = append(probs, problem{key: "exchange.aws.regions[" + strconv.Itoa(i) + "]", msg: fmt.Sprintf("%q is not an AWS region such as eu-west-1", reg)})
		}
	}
	return probs
}

// ExchangeGrants says, rule by rule, what exchange.rules grant.
func (c *Config) ExchangeGrants() []string {
	out := make([]string, len(c.Exchange.Rules))
	for i, r := range c.Exchange.Rules {
		out[i] = fmt.Sprintf("exchange.rules[%d]: %s", i, r.Grants())
	}
	return out
}

// AnyParts lists the parts rule r opens to every value with any: what an
// operator should look at twice.
func (r ExchangeRule) AnyParts() []string {
	var out []string
	add := func(k, v string) {
		if v == MatchAny {
			out = append(out, k)
		}
	}
	switch {
	case r.AWS != nil:
		add("account", r.AWS.Account)
	case r.Azure != nil:
		add("tenant", r.Azure.Tenant)
		add("subscription", r.Azure.Subscription)
		add("resource_group", r.Azure.ResourceGroup)
	case r.GCP != nil:
		add("project", r.GCP.Project)
	case r.JWT != nil:
		add("issuer", r.JWT.Issuer)
		add("user", r.JWT.User)
	}
	return out
}
