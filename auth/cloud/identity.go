package cloud

import (
	"strings"
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
	// AWS, Azure, GCP: the verified identity parsed into the parts exchange
	// rules name; exactly the one of Platform is set.
	AWS   *AWSParts
	Azure *AzureParts
	GCP   *GCPParts
	JWT   *JWTParts
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

// JWTParts is a token of a configured issuer, exchanged.
type JWTParts struct {
	Issuer  string // the issuer's config name
	User    string // the token's user name
	Subject string // sub
}

// AWSParts is an AWS caller, from the ARN STS returned and the proof's
// signature.
type AWSParts struct {
	Partition string // aws, aws-cn, aws-us-gov
	Account   string
	Kind      string // "role" (an assumed-role session), "user" (an IAM user), or the ARN's resource type (federated-user, root)
	Name      string // the role or user name
	Path      string // an IAM user's path ("/" when none); empty for roles: an assumed-role ARN carries none
	Session   string // the assumed-role session name
	Region    string // the region the proof was signed for
}

// AzureParts is an Entra ID workload identity, from the verified token.
type AzureParts struct {
	Tenant   string // tid
	ObjectID string // oid
	// From xms_mirid, when the token has one: .../subscriptions/S/resourcegroups/G/providers/P/T/N.
	Subscription  string
	ResourceGroup string
	ResourceType  string // e.g. Microsoft.ManagedIdentity/userAssignedIdentities
	Name          string
}

// GCPParts is a Google service account, from the verified token.
type GCPParts struct {
	Email string // lower case
	// Project and AccountID split an <id>@<project>.iam.gserviceaccount.com
	// email; empty for other addresses (Google-managed accounts).
	Project   string
	AccountID string
	Sub       string
	Azp       string
	HD        string
}

// ParseAWSARN splits a caller ARN as STS returns it; ok is false when arn
// is not one.
func ParseAWSARN(arn string) (p AWSParts, ok bool) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[1] == "" || f[4] == "" {
		return AWSParts{}, false
	}
	p.Partition, p.Account = f[1], f[4]
	kind, rest, _ := strings.Cut(f[5], "/")
	switch {
	case f[2] == "sts" && kind == "assumed-role":
		name, session, ok := strings.Cut(rest, "/")
		if !ok || name == "" || session == "" {
			return AWSParts{}, false
		}
		p.Kind, p.Name, p.Session = "role", name, session
	case f[2] == "iam" && kind == "user":
		i := strings.LastIndex(rest, "/")
		p.Kind, p.Name, p.Path = "user", rest[i+1:], "/"+rest[:i+1]
		if i < 0 {
			p.Path = "/"
		}
		if p.Name == "" {
			return AWSParts{}, false
		}
	default:
		p.Kind, p.Name = kind, rest
	}
	return p, true
}

// ParseAzureResourceID splits a managed identity's resource id (xms_mirid):
// /subscriptions/S/resourcegroups/G/providers/NAMESPACE/TYPE/NAME. Keys are
// compared without case, as Azure does; ok is false for any other shape.
func ParseAzureResourceID(id string) (sub, group, typ, name string, ok bool) {
	f := strings.Split(id, "/")
	if len(f) != 9 || f[0] != "" || !strings.EqualFold(f[1], "subscriptions") || !strings.EqualFold(f[3], "resourcegroups") ||
		!strings.EqualFold(f[5], "providers") {
		return "", "", "", "", false
	}
	for _, v := range []string{f[2], f[4], f[6], f[7], f[8]} {
		if v == "" {
			return "", "", "", "", false
		}
	}
	return f[2], f[4], f[6] + "/" + f[7], f[8], true
}

// gcpServiceAccountDomain ends the email of a user-managed service account.
const gcpServiceAccountDomain = ".iam.gserviceaccount.com"

// ParseGCPEmail splits <id>@<project>.iam.gserviceaccount.com; other
// addresses give empty parts.
func ParseGCPEmail(email string) (accountID, project string) {
	local, domain, ok := strings.Cut(strings.ToLower(email), "@")
	project, isSA := strings.CutSuffix(domain, gcpServiceAccountDomain)
	if !ok || !isSA || local == "" || project == "" || strings.Contains(project, ".") {
		return "", ""
	}
	return local, project
}

// Parts says the identity's parts the way exchange rules name them, for a
// refusal that tells the operator what to write.
func (id Identity) Parts() string {
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+" "+v)
		}
	}
	switch {
	case id.AWS != nil:
		p := id.AWS
		add("partition", p.Partition)
		add("account", p.Account)
		if p.Kind == "user" {
			add("user", strings.TrimPrefix(p.Path, "/")+p.Name)
		} else {
			add(p.Kind, p.Name)
		}
		add("session", p.Session)
		add("region", p.Region)
	case id.Azure != nil:
		p := id.Azure
		add("tenant", p.Tenant)
		add("subscription", p.Subscription)
		add("resource_group", p.ResourceGroup)
		add("name", p.Name)
		add("object_id", p.ObjectID)
	case id.GCP != nil:
		p := id.GCP
		add("project", p.Project)
		add("service_account", p.AccountID)
		if p.AccountID == "" {
			add("email", p.Email)
		}
		add("sub", p.Sub)
		add("azp", p.Azp)
		add("hd", p.HD)
	case id.JWT != nil:
		add("issuer", id.JWT.Issuer)
		add("user", id.JWT.User)
		add("subject", id.JWT.Subject)
	}
	return strings.Join(kv, ", ")
}
