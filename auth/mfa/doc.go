// Package mfa is the second factor of local accounts: TOTP (RFC 6238)
// with replay protection, and single-use recovery codes. It keeps no
// state: the caller stores the secret (encrypted), the last accepted
// time step and the recovery code hashes, and writes them back
// atomically (compare-and-swap on the user record).
package mfa
