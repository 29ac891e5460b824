package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/internal/jwks"
)

// awsClaimsNamespace is the claim under which STS puts the AWS facts of a
// web identity token (account, region, organisation, tags).
const awsClaimsNamespace = "https://sts.amazonaws.com/"

// awsWebIdentityAlgs are the algorithms sts:GetWebIdentityToken signs with.
var awsWebIdentityAlgs = []string{"RS256", "ES384"}

// AWSWebIdentityConfig trusts the web identity tokens of one AWS account:
// JWTs from sts:GetWebIdentityToken (IAM outbound identity federation,
// STS API since service/sts v1.41 and present in v1.51.9).
type AWSWebIdentityConfig struct {
	// Issuer is the account's issuer URL, as
	// `aws iam get-outbound-web-identity-federation-info` prints it
	// (https://<id>.tokens.sts.global.api.aws). Required.
	Issuer string
	// JWKSURL is the jwks_uri of the issuer's
	// /.well-known/openid-configuration. Required.
	JWKSURL string
	// Audience is the aud the tokens must carry: the audience workloads
	// request them for. Required.
	Audience string
}

// AWSWebIdentityVerifier checks TokenTypeAWSWebIdentity tokens. Unlike a
// GetCallerIdentity proof it needs no call to STS per exchange: the token is
// verified against the issuer's keys.
type AWSWebIdentityVerifier struct {
	rules *jwtRules
}

// NewAWSWebIdentityVerifier builds a verifier for c. The issuer's keys are
// fetched now and kept fresh until ctx ends (see NewGCPVerifier).
func NewAWSWebIdentityVerifier(ctx context.Context, c AWSWebIdentityConfig) (*AWSWebIdentityVerifier, error) {
	var problems []string
	if c.Issuer == "" {
		problems = append(problems, "issuer: is empty: set the account's outbound identity federation issuer URL")
	}
	if c.JWKSURL == "" {
		problems = append(problems, "jwks_url: is empty: set the jwks_uri of the issuer's openid-configuration")
	}
	if c.Audience == "" {
		problems = append(problems, "audience: is empty: set the audience workloads request tokens for")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid aws web identity configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	keys, err := jwks.Fetch(ctx, "AWS STS issuer "+c.Issuer, c.JWKSURL, 0)
	if err != nil {
		return nil, err
	}
	return &AWSWebIdentityVerifier{
		rules: newJWTRules("AWS STS", []string{c.Issuer}, c.Audience, awsWebIdentityAlgs, keys),
	}, nil
}

// Verify checks an AWS web identity token and returns the identity in it.
// The Principal is the `sub` claim (the role or user ARN, an assumed-role
// ARN normalised as NormaliseARN does). Refusals are *auth.DeniedError.
func (v *AWSWebIdentityVerifier) Verify(ctx context.Context, subjectToken string) (Identity, error) {
	claims, err := v.rules.verify(ctx, subjectToken)
	if err != nil {
		return Identity{}, err
	}
	sub, err := stringClaim(claims, "sub")
	if err != nil {
		return Identity{}, err
	}
	if !strings.HasPrefix(sub, "arn:") {
		return Identity{}, auth.Denied(`AWS web identity token has no ARN in its "sub" claim`)
	}
	exp, _ := claims.GetExpirationTime() // present: checked by the validator
	id := Identity{
		Platform:   PlatformAWS,
		Principal:  NormaliseARN(sub),
		Attributes: map[string]string{"arn": sub},
		ExpiresAt:  exp.Time,
	}
	if role, session, ok := assumedRole(sub); ok {
		setAttr(id.Attributes, "role_arn", role)
		setAttr(id.Attributes, "session_name", session)
	}
	if jti, err := stringClaim(claims, "jti"); err == nil {
		setAttr(id.Attributes, "jti", jti)
	}
	if ns, ok := claims[awsClaimsNamespace].(map[string]any); ok {
		for _, k := range []string{"aws_account", "source_region", "org_id", "ou_path"} {
			if s, ok := ns[k].(string); ok {
				setAttr(id.Attributes, strings.TrimPrefix(k, "aws_"), s)
			}
		}
	}
	if id.Attributes["account"] == "" {
		if parts := strings.SplitN(sub, ":", 6); len(parts) == 6 {
			setAttr(id.Attributes, "account", parts[4])
		}
	}
	return id, nil
}

// AWSWebIdentityToken asks STS for a web identity token (a JWT) for
// audience, signed RS256 and valid for 5 minutes, with the credentials of
// cfg. The account must have outbound identity federation enabled and the
// caller needs sts:GetWebIdentityToken. The API is regional: cfg.Region (or
// an endpoint override) must be set.
func AWSWebIdentityToken(ctx context.Context, cfg aws.Config, audience string) (string, error) {
	if audience == "" {
		return "", errors.New("aws web identity token: the audience is empty: pass the audience the portal expects")
	}
	if err := checkAWSCredentials(ctx, cfg); err != nil {
		return "", err
	}
	var noRegion bool
	client := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if o.Region == "" {
			if o.BaseEndpoint == nil {
				noRegion = true
			}
			o.Region = "us-east-1"
		}
	})
	if noRegion {
		return "", errors.New("aws web identity token: no AWS region: GetWebIdentityToken is regional; set AWS_REGION")
	}
	out, err := client.GetWebIdentityToken(ctx, &sts.GetWebIdentityTokenInput{
		Audience:         []string{audience},
		SigningAlgorithm: aws.String("RS256"),
		DurationSeconds:  aws.Int32(300),
	})
	if err != nil {
		return "", fmt.Errorf("aws web identity token: %w", err)
	}
	if out.WebIdentityToken == nil || *out.WebIdentityToken == "" {
		return "", errors.New("aws web identity token: STS answered without a token")
	}
	return *out.WebIdentityToken, nil
}
