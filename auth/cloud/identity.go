package cloud

import (
	"time"
)

// Platforms, as Identity.Platform holds them and Detect returns them.
const (
	PlatformAWS   = "aws"
	PlatformAzure = "azure"
	PlatformGCP   = "gcp"
)

// Subject token types of POST /v1/token (RFC 8693 subject_token_type), one
// per kind of proof. Each names exactly one verifier.
const (
	// TokenTypeAWS is a signed sts:GetCallerIdentity request, serialised as
	// described at AWSVerifier; made by AWSProof.
	TokenTypeAWS = "urn:portcullis:params:oauth:token-type:aws-sts-get-caller-identity"
	// TokenTypeAWSWebIdentity is a JWT from sts:GetWebIdentityToken (IAM
	// outbound identity federation); made by AWSWebIdentityToken.
	TokenTypeAWSWebIdentity = "urn:portcullis:params:oauth:token-type:aws-web-identity-token"
	// TokenTypeAzure is an Entra ID access token (a JWT) for the portcullis
	// application; made by AzureToken.
	TokenTypeAzure = "urn:portcullis:params:oauth:token-type:azure-access-token"
	// TokenTypeGCP is a Google-signed identity token (a JWT) from the
	// metadata server; made by GCPToken.
	TokenTypeGCP = "urn:portcullis:params:oauth:token-type:gcp-identity-token"
)

// Identity is who a verified platform proof says the caller is.
type Identity struct {
	// Platform is "aws", "azure" or "gcp".
	Platform string
	// Principal is what exchange rules match on:
	//   - aws: the caller's IAM ARN; an assumed-role session
	//     arn:aws:sts::123456789012:assumed-role/Role/session is normalised to
	//     the role, arn:aws:iam::123456789012:role/Role (the session name is in
	//     Attributes["session_name"]). IAM users and federated users keep the
	//     ARN STS returns.
	//   - azure: the managed identity's resource id (the xms_mirid claim, e.g.
	//     /subscriptions/<sub>/resourcegroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>),
	//     verbatim as Entra ID wrote it; without xms_mirid (a workload identity
	//     or service principal), "oid:<object id>".
	//   - gcp: the service account email.
	Principal string
	// Attributes are further facts for audit and rules: account, arn,
	// user_id, session_name (aws); tenant, oid, appid, sub, xms_mirid (azure);
	// sub, email, project_id, zone, instance_name (gcp). Absent facts have
	// no key.
	Attributes map[string]string
	// ExpiresAt is when the proof stops being valid: a token issued for it
	// should not outlive it. For an AWS GetCallerIdentity proof it is the
	// signing time plus the verifier's MaxAge.
	ExpiresAt time.Time
}

// setAttr sets a non-empty attribute.
func setAttr(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}
