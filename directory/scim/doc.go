// Package scim is portcullis's SCIM 2.0 service provider (RFC 7643, RFC
// 7644): the endpoint an IdP (Okta, Microsoft Entra ID, ...) pushes its
// users and groups to, so that portcullis knows who exists, who is active,
// which groups (and so which teams and roles) they are in, and ends their
// sessions when that changes.
//
// Boundary: scim speaks HTTP and SCIM JSON on one side and package
// directory (the one writer of users, groups and access events) on the
// other; it reads the store directly. It keeps nothing itself, decides no
// roles (package rbac maps groups and the role attribute to roles) and
// kills no sessions: the directory records offboarding events in the
// store, which every proxy node polls. The portal mounts it; it does not
// know the MySQL wire.
//
// # Scope
//
// A bearer token belongs to one connection, and a request sees and
// changes only that connection's users (source scim, that connection)
// and groups: other connections' users and local accounts answer 404 and
// are left out of lists, and a group takes only the connection's own
// users as members. Users and groups it creates record the connection.
// The role attribute takes only the configured database roles (400
// invalidValue naming them); the console's administrator role is never
// one.
//
// # Mounting
//
// A Server is an http.Handler for the paths below the SCIM base URL:
// /Users, /Users/{id}, /Groups, /Groups/{id}, /ServiceProviderConfig,
// /ResourceTypes[/{name}] and /Schemas[/{urn}]. Mount it with the prefix
// stripped:
//
//	srv := scim.New(scim.Options{Store: st, Connection: "okta",
//		BaseURL: "https://portcullis.example.com/scim/v2", Log: log})
//	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", srv))
//
// For convenience a request path that still starts with the path of
// BaseURL (/scim/v2/Users) is accepted as well. Every request needs
// "Authorization: Bearer <token>", where the token's SHA-256 is the stored
// SCIM token (of Options.Connection, when it is set; NewToken makes one;
// the CLI stores its hash with store.PutSCIMToken).
//
// # Resources
//
// A user's core attributes map to store.User: userName, externalId,
// displayName, name.givenName, name.familyName, emails (value, type,
// primary), active, and the role of the extension schema
// urn:ietf:params:scim:schemas:extension:portcullis:2.0:User. Every other
// attribute the IdP sends (the rest of name, phoneNumbers, the enterprise
// extension, extensions we do not know) is kept verbatim in User.Extra and
// returned. An attribute that is in no schema is refused (400 invalidValue),
// except under an extension URN. A password is accepted and discarded.
// Groups hold users only; their displayName must be unique.
//
// Requests and resources travel as JSON documents (map[string]any): a
// POST or PUT body is normalized against the schemas (canonical attribute
// names, "True"/"False" as booleans, read-only attributes dropped), a
// PATCH edits the stored resource's document and is normalized the same
// way, and only a document that passed is written. A request that fails
// changes nothing.
//
// # Filters
//
// Filters are parsed with github.com/scim2/filter-parser and evaluated in
// Go on each resource's document, paging through the store; no filter text
// reaches SQL. A filter that pins userName, displayName or id with eq looks
// that resource up directly.
//
// # Offboarding
//
// When a user becomes inactive or is deleted, leaves a group, when a group
// is renamed or deleted (for each of its members), or when the role
// attribute or the userName changes, the directory appends a store.Event
// (user.deactivated, user.deleted, user.roles_changed; Subject the user
// name) and revokes a deactivated user's refresh tokens in the same store
// transaction as the write; then the Server calls Options.OnChange. See
// Change. If the event cannot be appended, nothing is written and the
// request answers 500, so the IdP retries; a retried request that sets
// active to false records its deactivation again even though nothing
// changes. A deleted user leaves a tombstone: the name stays refused
// until it is provisioned again, and tokens from before that stay
// refused.
//
// # Concurrency and versions
//
// meta.version and the ETag header are W/"<store version>". PUT, PATCH
// and DELETE honour If-Match (412 on a mismatch) and GET If-None-Match
// (304). A PUT or PATCH without If-Match that races another write reads
// the resource again and reapplies itself. A PATCH that only adds or
// removes group members is written as additions and removals, not as a
// new member list. DELETE compares If-Match with the version it read just
// before deleting (the store's delete takes no version).
//
// Not supported: /Bulk, /Me, POST .search (501), nested groups, password
// changes; the email sub-attribute "display" and a member's "display" are
// not kept.
package scim
