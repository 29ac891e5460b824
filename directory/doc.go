// Package directory is the one writer of access-changing state: users
// (create, update, deactivate, delete, first SSO login), their source,
// deletion tombstones, roles, teams, administrator grants, group
// membership, refresh-token revocation and session kills.
//
// Every write and the events it implies (store.Event, the log every
// proxy node polls to end sessions) commit in one store transaction
// (store.Store.Update): a failure anywhere leaves neither, so a disabled
// user can never keep live sessions because an event was lost.
//
// Each write names its Actor: a SCIM connection, an SSO connection, the
// console (an administrator), the admin API, or the user itself. The
// directory enforces who may write what:
//
//   - a SCIM connection sees and changes only the users and groups of its
//     own source (store.SourceSCIM with its connection name), never a
//     local account or another connection's user;
//   - no directory attribute grants or removes the administrator role:
//     only the console or the admin API do (SCIM's role attribute takes a
//     configured database role, an SSO login's role claim never touches
//     an administrator);
//   - deleting a user leaves a tombstone; provisioning the name again
//     sets the user's NotBefore, so tokens from before stay refused.
//
// SCIM (directory/scim), the console, the admin API and SSO login are
// thin front-ends over it. Reads go to the store directly.
package directory
