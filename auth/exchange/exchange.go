package exchange

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/auth/internal/safe"
	"github.com/portcullisdb/portcullis/config"
)

// TokenTypeJWT is RFC 8693's type for a JWT from a configured issuer.
const TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"

// SubjectVerifier checks one kind of subject token.
type SubjectVerifier interface {
	Verify(ctx context.Context, token string) (cloud.Identity, error)
}

// TokenSigner signs the exchanged token: the signing side of the trust
// boundary (what is verified is the subject token); *auth.TokenIssuer
// implements it.
type TokenSigner interface {
	Issue(c auth.AccessClaims) (string, time.Time, error)
}

// Exchanger is immutable; a config reload builds a new one.
type Exchanger struct {
	verifiers map[string]SubjectVerifier // by subject_token_type
	audiences map[string]string          // by platform
	rules     []config.ExchangeRule
	signer    TokenSigner
}

// New returns an Exchanger. verifiers maps subject token types to their
// verifiers; audiences says, per platform, which audience proofs must be
// requested for; rules are tried in order.
func New(verifiers map[string]SubjectVerifier, audiences map[string]string, rules []config.ExchangeRule, signer TokenSigner) *Exchanger {
	return &Exchanger{verifiers: verifiers, audiences: audiences, rules: rules, signer: signer}
}

// Result is a granted exchange.
type Result struct {
	Token     string
	ExpiresAt time.Time
	Identity  cloud.Identity
	Username  string
	Roles     []string
}

// Exchange verifies the subject token and issues a portcullis token.
// Refusals are *auth.DeniedError; NoRuleError when the identity is valid
// but no rule maps it.
func (e *Exchanger) Exchange(ctx context.Context, tokenType, token string) (Result, error) {
	v, ok := e.verifiers[tokenType]
	if !ok {
		return Result{}, auth.Denied("subject_token_type %q is not accepted here: use one of %s", safe.Printable(tokenType), strings.Join(e.Types(), ", "))
	}
	id, err := v.Verify(ctx, token)
	if err != nil {
		return Result{Identity: id}, err // a refused replay still names who
	}
	rule, ok := e.match(id)
	if !ok {
		return Result{Identity: id}, &NoRuleError{Platform: id.Platform, Principal: id.Principal, Parts: id.Parts()}
	}
	ttl := rule.TTL
	if !id.ExpiresAt.IsZero() {
		// The token never outlives the proof it was exchanged for,
		// except for AWS, whose signed request only proves "now".
		if left := time.Until(id.ExpiresAt); id.Platform != "aws" && left < ttl {
			ttl = left
		}
	}
	if ttl <= 0 {
		return Result{Identity: id}, auth.Denied("the %s proof has expired", id.Platform)
	}
	method := map[string]string{"aws": auth.MethodAWS, "azure": auth.MethodAzure, "gcp": auth.MethodGCP, "jwt": auth.MethodJWT}[id.Platform]
	tok, exp, err := e.signer.Issue(auth.AccessClaims{Subject: id.Principal, Username: rule.Username, Roles: rule.Roles, AuthMethod: method, TTL: ttl})
	if err != nil {
		return Result{Identity: id}, fmt.Errorf("issue token: %w", err)
	}
	return Result{Token: tok, ExpiresAt: exp, Identity: id, Username: rule.Username, Roles: rule.Roles}, nil
}

// Types lists the accepted subject token types.
func (e *Exchanger) Types() []string {
	out := make([]string, 0, len(e.verifiers))
	for t := range e.verifiers {
		out = append(out, t)
	}
	return out
}

// Audiences tells clients, per platform (aws, azure, gcp), which audience
// to request a proof for. It travels with the verifiers so that discovery
// never advertises an audience the running verifiers would refuse.
func (e *Exchanger) Audiences() map[string]string { return e.audiences }

func (e *Exchanger) match(id cloud.Identity) (config.ExchangeRule, bool) {
	for _, r := range e.rules {
		if matches(r, id) {
			return r, true
		}
	}
	return config.ExchangeRule{}, false
}

// maxIdentityInReason lets a 403 quote a whole verified identity (long
// Azure resource ids, IAM role paths), which the operator needs to write
// the rule, while still bounding it.
const maxIdentityInReason = 1024

// NoRuleError: the identity is genuine but no rule maps it (HTTP 403).
type NoRuleError struct {
	Platform, Principal string
	Parts               string // the identity's parts as rules name them
}

func (e *NoRuleError) Error() string {
	if e.Parts == "" {
		return fmt.Sprintf("no exchange rule matches %s identity %q: add one to exchange.rules", e.Platform, safe.Truncate(e.Principal, maxIdentityInReason))
	}
	return fmt.Sprintf("no exchange rule matches %s identity %q (%s): add a rule naming these parts to exchange.rules",
		e.Platform, safe.Truncate(e.Principal, maxIdentityInReason), safe.Truncate(e.Parts, maxIdentityInReason))
}

// JWTSubject verifies JWTs from the configured issuers that may be
// exchanged. The principal is "<issuer name>:<username>".
type JWTSubject struct {
	Verifier *auth.Verifier
	Allowed  map[string]bool // issuer names
}

// Verify implements SubjectVerifier.
func (j JWTSubject) Verify(ctx context.Context, token string) (cloud.Identity, error) {
	id, err := j.Verifier.Verify(ctx, token)
	if err != nil {
		return cloud.Identity{}, err
	}
	if !j.Allowed[id.Issuer] {
		return cloud.Identity{}, auth.Denied("tokens of issuer %s may not be exchanged: list it in exchange.jwt_issuers", id.Issuer)
	}
	return cloud.Identity{
		Platform: "jwt", Principal: id.Issuer + ":" + id.Username,
		Attributes: map[string]string{"issuer": id.Issuer, "sub": id.Subject},
		JWT:        &cloud.JWTParts{Issuer: id.Issuer, User: id.Username, Subject: id.Subject},
		ExpiresAt:  id.ExpiresAt,
	}, nil
}
