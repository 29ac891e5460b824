// Package rbac decides which role, and so which backend credentials, a
// verified identity gets. It reads the roles, mappings and default order
// from the config; it knows nothing of the MySQL wire or of HTTP.
//
// Roles an identity holds come from two places, unioned:
//   - the issuer's roles claim: each value that names a configured role;
//   - mappings: a mapping of the identity's issuer grants its roles when the
//     identity carries one of its groups (a mapping with no groups grants
//     to every identity of that issuer).
//
// The role used for a connection is the one named after "/" in the MySQL
// user name; without one, the first held role in default_role_order, or the
// only role held. Anything else is a refusal that says what was missing.
package rbac
