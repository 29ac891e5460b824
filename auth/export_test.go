package auth

// VerifyUncached lets benchmarks measure a cold verification.
var VerifyUncached = (*Verifier).verify
