// Package cloud turns a cloud workload's platform identity into an
// Identity that exchange rules can match, and makes those proofs on the
// workload's side.
//
// Server side (the portal's POST /v1/token calls these): one verifier per
// subject token type.
//
//	TokenTypeAWS             AWSVerifier             a signed, unsent sts:GetCallerIdentity request (see AWSRequest);
//	                                                 checked locally, then sent to STS, which answers with the caller's ARN
//	TokenTypeAzure           AzureVerifier           an Entra ID access token of a managed or workload identity
//	TokenTypeGCP             GCPVerifier             a Google-signed identity token from the metadata server
//
// Every proof is bound to this portcullis deployment (the signed
// X-Portcullis-Audience header, by default issuer.url, or the token's
// `aud`), so a proof a workload made for another service cannot be replayed
// here; an AWS proof is accepted once (AWSVerifier.Spent). Each verified
// identity carries its parts (AWSParts, AzureParts, GCPParts) for the
// exchange rules to match. Every refusal is a
// *auth.DeniedError whose reason a person can act on ("AWS proof is for
// sts:AssumeRole, not sts:GetCallerIdentity", "Entra ID tenant \"...\" is not
// trusted"); reasons and errors never contain a token, a signature or key
// bytes. An error that is not a DeniedError means the check could not be
// made (STS unreachable, bad configuration): it is not the caller's fault;
// it names the host and the cause, never the request URL or the raw error.
//
// Client side (the CLI's portcullis token --cloud calls these): AWSProof,
// AzureToken and GCPToken obtain proofs with the platforms' own SDKs (aws-sdk-go-v2, azidentity, compute/metadata) and
// their usual credential discovery; Detect picks the platform for
// --cloud auto.
//
// Sub-package cloudtest has loopback fakes of STS, the GCE metadata server
// and Entra ID that the real SDKs reach through their supported overrides
// (AWS_ENDPOINT_URL_STS, GCE_METADATA_HOST, IDENTITY_ENDPOINT).
//
// Boundary: cloud knows nothing of HTTP routes, token issuing or exchange
// rules; it verifies and obtains proofs. Its JWTs are checked by the one
// JWT checker (auth/internal/jwtcheck) that auth's Verifier uses. It imports
// auth only for DeniedError and store only for ErrConflict (a spent
// proof); auth never imports cloud.
package cloud
