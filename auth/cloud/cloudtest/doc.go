// Package cloudtest has loopback fakes of the cloud services package cloud
// talks to, for tests here and in integration: a fake AWS STS that checks
// SigV4 signatures, a fake GCE metadata server with a Google-style issuer,
// and a fake Entra ID with a managed identity endpoint. The real SDKs reach
// them through their own supported overrides:
//
//	AWS    AWS_ENDPOINT_URL_STS=<FakeSTS.URL> (or aws.Config.BaseEndpoint)
//	GCP    GCE_METADATA_HOST=<FakeGCP.Host>
//	Azure  IDENTITY_ENDPOINT=<FakeEntra.IdentityEndpoint> and
//	       IDENTITY_HEADER=<FakeEntra.IdentityHeader> (the App Service managed
//	       identity source of azidentity/MSAL, which accepts plain http)
//
// Azure workload identity (AZURE_FEDERATED_TOKEN_FILE) cannot be faked on
// loopback: azidentity refuses an AZURE_AUTHORITY_HOST that is not https.
//
// Each fake also mints tokens directly (Mint) with an edit hook, for tests
// of bad input: another audience, tenant or issuer, expired, another
// algorithm or key id. FailingUpstream plays a service that is down,
// slow, resets connections, fails with 5xx or echoes the request.
//
// Every server listens on 127.0.0.1 and is closed by t.Cleanup. This is
// not a test-only package (no _test.go) so that integration tests can use
// it; nothing in the product imports it.
package cloudtest
