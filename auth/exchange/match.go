package exchange

import (
	"slices"
	"strings"

	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/config"
)

// matches reports whether rule r grants the verified identity id: every
// part the rule names must match the same part of the identity. A part
// the identity lacks never matches a rule that names it.
func matches(r config.ExchangeRule, id cloud.Identity) bool {
	switch {
	case r.AWS != nil && id.AWS != nil:
		return matchAWS(r.AWS, id.AWS)
	case r.Azure != nil && id.Azure != nil:
		return matchAzure(r.Azure, id.Azure)
	case r.GCP != nil && id.GCP != nil:
		return matchGCP(r.GCP, id.GCP)
	case r.JWT != nil && id.JWT != nil:
		return matchJWT(r.JWT, id.JWT)
	}
	return false
}

func matchAWS(m *config.AWSMatch, p *cloud.AWSParts) bool {
	partition := m.Partition
	if partition == "" {
		partition = "aws"
	}
	if p.Partition != partition || !anyOr(m.Account, p.Account, exact) {
		return false
	}
	switch {
	case m.Role != "":
		if p.Kind != "role" || !part(m.Role, p.Name) {
			return false
		}
	case m.User != "":
		if p.Kind != "user" || !part(m.User, strings.TrimPrefix(p.Path, "/")+p.Name) {
			return false
		}
	default:
		return false
	}
	if m.Session != "" && !part(m.Session, p.Session) {
		return false
	}
	return len(m.Regions) == 0 || slices.Contains(m.Regions, p.Region)
}

func matchAzure(m *config.AzureMatch, p *cloud.AzureParts) bool {
	if !anyOr(m.Tenant, p.Tenant, strings.EqualFold) {
		return false
	}
	if m.ObjectID != "" {
		return p.ObjectID != "" && strings.EqualFold(m.ObjectID, p.ObjectID)
	}
	return m.Name != "" && p.Name != "" &&
		strings.EqualFold(p.ResourceType, "Microsoft.ManagedIdentity/userAssignedIdentities") &&
		anyOr(m.Subscription, p.Subscription, strings.EqualFold) &&
		anyOr(m.ResourceGroup, p.ResourceGroup, strings.EqualFold) &&
		part(strings.ToLower(m.Name), strings.ToLower(p.Name))
}

func matchGCP(m *config.GCPMatch, p *cloud.GCPParts) bool {
	switch {
	case m.Email != "":
		if !strings.EqualFold(m.Email, p.Email) {
			return false
		}
	case m.ServiceAccount != "":
		if p.AccountID == "" || !anyOr(m.Project, p.Project, exact) || !part(strings.ToLower(m.ServiceAccount), p.AccountID) {
			return false
		}
	default:
		return false
	}
	return optional(m.Sub, p.Sub) && optional(m.Azp, p.Azp) && optional(m.HD, p.HD)
}

func matchJWT(m *config.JWTMatch, p *cloud.JWTParts) bool {
	return anyOr(m.Issuer, p.Issuer, exact) &&
		(m.User == "" || m.User == config.MatchAny || part(m.User, p.User)) &&
		optional(m.Subject, p.Subject)
}

func exact(a, b string) bool { return a == b }

// anyOr matches a required part: the rule's explicit "any", or equal.
func anyOr(rule, v string, eq func(a, b string) bool) bool {
	if rule == config.MatchAny {
		return true
	}
	return rule != "" && v != "" && eq(rule, v)
}

// optional matches a part the rule may leave out.
func optional(rule, v string) bool { return rule == "" || rule == v }

// part matches one part of an identity against a rule's pattern, where *
// stands for any run of characters except the separators
// (config.PatternSeparators): a wildcard never reaches into another part
// of the identity, so "batch-*" never matches batch-x@evil.example.com.
// An empty v never matches.
func part(pattern, v string) bool {
	return v != "" && glob(pattern, v)
}

func glob(p, v string) bool {
	for p != "" {
		if p[0] != '*' {
			if v == "" || v[0] != p[0] {
				return false
			}
			p, v = p[1:], v[1:]
			continue
		}
		p = p[1:]
		for i := 0; ; i++ { // the * takes v[:i]
			if glob(p, v[i:]) {
				return true
			}
			if i == len(v) || strings.IndexByte(config.PatternSeparators, v[i]) >= 0 {
				return false
			}
		}
	}
	return v == ""
}
