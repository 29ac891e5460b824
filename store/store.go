package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every method wraps one of them (with %w) when it applies,
// so callers test with errors.Is.
var (
	// ErrNotFound: no such record, or a record it refers to (a group
	// member, a token's user) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique name, id or hash is taken, or a one-time
	// record (refresh token, auth code) was already used.
	ErrConflict = errors.New("conflict")
	// ErrVersionMismatch: the record changed since the caller read it
	// (optimistic concurrency; the SCIM ETag).
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrInvalid: the caller passed a value the store cannot keep (an
	// empty name, a key longer than its column).
	ErrInvalid = errors.New("invalid")
	// ErrRevoked: the refresh token, or another token of its family, was
	// revoked (signed out, or a reuse was detected).
	ErrRevoked = errors.New("revoked")
	// ErrSchemaTooNew: Open found a database migrated by a newer
	// portcullis; this binary refuses to touch it.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// Store is everything portcullis keeps. One implementation, *DB, serves
// both engines; the conformance suite in store/storetest holds every
// engine to the same behaviour.
//
// Every time a method returns is UTC, truncated to the microsecond (the
// precision of both engines' columns). Created and Updated are always set
// by the store.
type Store interface {
	// CreateUser adds u; an empty ID gets a random UUID. It returns the
	// stored user (Version 1). ErrConflict if the user name, compared
	// case-insensitively, or the ID is taken.
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByName finds a user by user name as auth/username normalises
	// it; ErrInvalid for a name that rule refuses.
	GetUserByName(ctx context.Context, userName string) (User, error)
	// ListUsers returns a page of users ordered by Created then ID, and
	// the total number of users.
	ListUsers(ctx context.Context, opts ListOptions) (users []User, total int, err error)
	// UpdateUser replaces every field of the user u.ID but Created and
	// Version, and returns the stored user with Version incremented.
	// expectedVersion 0 updates whatever the version; otherwise a
	// different stored version is ErrVersionMismatch.
	UpdateUser(ctx context.Context, u User, expectedVersion int64) (User, error)
	// DeleteUser removes the user with its group memberships, refresh
	// tokens and auth codes; the groups it left get a new Version.
	DeleteUser(ctx context.Context, id string) error

	// CreateGroup adds g with its members; an unknown member is
	// ErrNotFound, a taken display name (case-insensitive) ErrConflict.
	CreateGroup(ctx context.Context, g Group) (Group, error)
	GetGroup(ctx context.Context, id string) (Group, error)
	// GetGroupByName finds a group by display name, case-insensitively.
	GetGroupByName(ctx context.Context, displayName string) (Group, error)
	// ListGroups returns a page of groups (with members) ordered by
	// Created then ID, and the total number of groups.
	ListGroups(ctx context.Context, opts ListOptions) (groups []Group, total int, err error)
	// UpdateGroup replaces the group's fields and its whole member set;
	// expectedVersion as in UpdateUser.
	UpdateGroup(ctx context.Context, g Group, expectedVersion int64) (Group, error)
	// AddMembers adds users to a group; members already in it are no
	// error. It bumps the group's Version.
	AddMembers(ctx context.Context, groupID string, userIDs ...string) error
	// RemoveMembers removes users from a group; non-members are no
	// error. It bumps the group's Version.
	RemoveMembers(ctx context.Context, groupID string, userIDs ...string) error
	DeleteGroup(ctx context.Context, id string) error
	// GroupsOfUser returns the groups the user belongs to, ordered by
	// display name, without their members.
	GroupsOfUser(ctx context.Context, userID string) ([]Group, error)

	// PutTeam creates or replaces the team t.Name; Created survives a
	// replace.
	PutTeam(ctx context.Context, t Team) (Team, error)
	GetTeam(ctx context.Context, name string) (Team, error)
	// ListTeams returns every team ordered by name.
	ListTeams(ctx context.Context) ([]Team, error)
	DeleteTeam(ctx context.Context, name string) error

	// AddSigningKey stores a key; ErrConflict if the KID is taken.
	AddSigningKey(ctx context.Context, k SigningKey) (SigningKey, error)
	// ListSigningKeys returns every key ordered by Created then KID.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey stops signing with kid at activeUntil and keeps
	// publishing it until retireAfter.
	RetireSigningKey(ctx context.Context, kid string, activeUntil, retireAfter time.Time) error
	// DeleteExpiredSigningKeys deletes the retired keys whose RetireAfter
	// is before now and returns how many.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int64, error)

	// CreateRefreshToken stores rt; an empty ID gets a random UUID, an
	// empty FamilyID the token's ID (a new family). An unknown UserID is
	// ErrNotFound, a taken hash ErrConflict.
	CreateRefreshToken(ctx context.Context, rt RefreshToken) (RefreshToken, error)
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// MarkRefreshTokenUsed sets UsedAt if it is unset, atomically: of
	// concurrent callers exactly one succeeds, the others get
	// ErrConflict. Reuse detection depends on it.
	MarkRefreshTokenUsed(ctx context.Context, id string, at time.Time) error
	// RotateRefreshToken uses up the refresh token usedID and stores next
	// (its FamilyID and UserID are taken from usedID; nil stores nothing)
	// in one transaction that also checks the family is not revoked: of
	// concurrent callers one succeeds; the others get ErrConflict (a
	// reuse: the caller revokes the family, next included, because the
	// winner committed it with the use). ErrRevoked if the token or its
	// family was revoked, ErrNotFound if unknown.
	RotateRefreshToken(ctx context.Context, usedID string, at time.Time, next *RefreshToken) (RefreshToken, error)
	// RevokeRefreshFamily sets RevokedAt on the family's unrevoked tokens
	// and returns how many.
	RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) (int64, error)
	// RevokeUserRefreshTokens sets RevokedAt on the user's unrevoked
	// tokens and returns how many.
	RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) (int64, error)
	// DeleteExpiredRefreshTokens deletes tokens whose ExpiresAt is before
	// now and returns how many.
	DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int64, error)

	// CreateAuthCode stores a one-time code; ErrConflict if the hash is
	// taken, ErrNotFound if the user is unknown.
	CreateAuthCode(ctx context.Context, c AuthCode) (AuthCode, error)
	// ConsumeAuthCode marks the code used and returns it, atomically. A
	// code already used returns ErrConflict together with the code, so
	// the caller can revoke what the first use issued; an expired or
	// unknown code is ErrNotFound.
	ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (AuthCode, error)
	// RedeemAuthCode uses up a one-time code only if use, run inside the
	// transaction on the unexpired code, returns no error; use returns
	// the login's first refresh token (or nil), stored in the same
	// transaction (FamilyID and UserID taken from the code). An error
	// from use comes back as is and leaves the code unused, whether it
	// was used before or not, so a caller who fails use's checks (PKCE,
	// redirect) cannot spoil the code. A code used before (or by a
	// concurrent caller) that passes use is ErrConflict, returned with
	// the code so the caller can revoke its family; ErrRevoked if the
	// family was revoked meanwhile; an expired or unknown code is
	// ErrNotFound. use must not call the store.
	RedeemAuthCode(ctx context.Context, hash []byte, now time.Time, use func(AuthCode) (*RefreshToken, error)) (AuthCode, error)
	// DeleteExpiredAuthCodes deletes codes whose ExpiresAt is before now
	// and returns how many.
	DeleteExpiredAuthCodes(ctx context.Context, now time.Time) (int64, error)

	// PutSCIMToken stores the token of t.Connection, replacing any
	// previous one (rotation); an empty ID gets a random UUID.
	PutSCIMToken(ctx context.Context, t SCIMToken) (SCIMToken, error)
	// FindSCIMToken looks a token up by the SHA-256 of its value.
	FindSCIMToken(ctx context.Context, hash []byte) (SCIMToken, error)
	// TouchSCIMToken records a use of the token id.
	TouchSCIMToken(ctx context.Context, id string, at time.Time) error
	// DeleteSCIMToken removes the token of a connection.
	DeleteSCIMToken(ctx context.Context, connection string) error
	// ListSCIMTokens returns every connection's token ordered by
	// Connection (directory sync is on while one exists).
	ListSCIMTokens(ctx context.Context) ([]SCIMToken, error)

	// PutConnectionSetting creates or replaces the setting of
	// c.Connection; UpdatedBy must name who changed it.
	PutConnectionSetting(ctx context.Context, c ConnectionSetting) (ConnectionSetting, error)
	// ListConnectionSettings returns every setting ordered by Connection.
	ListConnectionSettings(ctx context.Context) ([]ConnectionSetting, error)

	// AddLoginFailure records a failed login under key (an account or
	// an address), now; rows older than an hour go at the same time.
	AddLoginFailure(ctx context.Context, key string) error
	// LoginFailuresSince counts the failures of key at or after since,
	// and returns the oldest of them (zero when there is none).
	LoginFailuresSince(ctx context.Context, key string, since time.Time) (n int, oldest time.Time, err error)

	// SpendProof records that the one-time proof id (a digest of a signed
	// workload proof) has been exchanged, until expires; ErrConflict if it
	// already was. Every node sharing the store sees it, so a proof is
	// accepted once across them all.
	SpendProof(ctx context.Context, id string, expires time.Time) error

	// AppendEvent adds e to the event log and returns its ID. IDs grow
	// and become visible in order, so a reader that remembers the last
	// ID it saw never misses an event.
	AppendEvent(ctx context.Context, e Event) (int64, error)
	// EventsSince returns up to limit events with ID > afterID in ID
	// order (limit <= 0: 1000).
	EventsSince(ctx context.Context, afterID int64, limit int) ([]Event, error)
	// LatestEventID is the ID of the last event appended (0: none yet);
	// a node starts polling from there.
	LatestEventID(ctx context.Context) (int64, error)
	// DeleteEventsBefore deletes events created before t and returns how
	// many. IDs are never reused.
	DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error)

	// AddEphemeralUser records a backend user created for one session;
	// ErrConflict if it is already recorded.
	AddEphemeralUser(ctx context.Context, e EphemeralUser) (EphemeralUser, error)
	RemoveEphemeralUser(ctx context.Context, backendUser string) error
	// ListEphemeralUsers returns every record ordered by Created then
	// BackendUser.
	ListEphemeralUsers(ctx context.Context) ([]EphemeralUser, error)

	// Ping checks the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// ListOptions pages a list. Limit 0 means no limit.
type ListOptions struct {
	Offset int
	Limit  int
}

// User sources.
const (
	SourceSCIM  = "scim"
	SourceSSO   = "sso"
	SourceLocal = "local"
)

// User is a person (or program) portcullis knows, whether provisioned by
// SCIM, created at first SSO login or made locally.
type User struct {
	ID          string
	UserName    string // trimmed; unique by its auth/username normal form
	ExternalID  string
	DisplayName string
	GivenName   string
	FamilyName  string
	Emails      []Email
	Active      bool
	Role        string // the SCIM custom role attribute
	Source      string // SourceSCIM, SourceSSO or SourceLocal
	// Extra is the rest of the SCIM resource (e.g. the enterprise
	// extension), kept verbatim.
	Extra   json.RawMessage
	Version int64 // incremented on every change; the SCIM ETag
	Created time.Time
	Updated time.Time
}

// Email is one of a user's addresses.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Group is a directory group, usually pushed by SCIM.
type Group struct {
	ID          string
	DisplayName string // unique, case-insensitively
	ExternalID  string
	Extra       json.RawMessage
	Members     []string // user IDs, sorted; nil from GroupsOfUser
	Version     int64
	Created     time.Time
	Updated     time.Time
}

// Team maps directory groups to portcullis roles.
type Team struct {
	Name    string   // unique
	Groups  []string // group display names
	Roles   []string
	Created time.Time
	Updated time.Time
}

// Signing key algorithms.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// SigningKey is a key the token issuer signs with. The store keeps
// PrivateKey as given: the caller encrypts it.
type SigningKey struct {
	KID         string
	Alg         string // AlgES256 or AlgRS256
	PrivateKey  []byte
	PublicJWK   []byte
	Created     time.Time
	ActiveUntil *time.Time // nil: the current signing key
	RetireAfter time.Time  // publish in the JWKS until then
}

// RefreshToken is an issued refresh token. The store sees only the
// SHA-256 of the opaque token.
type RefreshToken struct {
	ID         string
	FamilyID   string // tokens rotated from one login share it
	UserID     string
	Hash       []byte
	ClientData json.RawMessage // e.g. the encrypted upstream refresh token
	Created    time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	RevokedAt  *time.Time
}

// AuthCode is a one-time code (authorization code, device code).
type AuthCode struct {
	Hash      []byte
	UserID    string
	FamilyID  string
	Data      json.RawMessage
	Created   time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// SCIMToken is the bearer token a SCIM connection presents; one per
// connection.
type SCIMToken struct {
	ID         string
	Connection string
	Hash       []byte
	Created    time.Time
	LastUsed   *time.Time
}

// ConnectionSetting is the state of an IdP connection an administrator
// set at runtime (in the console). Every node reads it from the store, so
// a change holds on all of them; a connection without a setting has the
// state its config file gives it.
type ConnectionSetting struct {
	Connection string
	Enabled    bool
	EnforceMFA bool
	UpdatedBy  string // the administrator's user name
	Updated    time.Time
}

// Event kinds every node acts on.
const (
	EventUserDeactivated  = "user.deactivated"
	EventUserDeleted      = "user.deleted"
	EventUserRolesChanged = "user.roles_changed"
	EventSessionKill      = "session.kill"
)

// Event is one entry of the append-only log the proxy nodes poll to act on
// offboarding within a second.
type Event struct {
	ID      int64
	Kind    string
	Subject string // a user name or a session id
	Data    json.RawMessage
	Created time.Time
}

// EphemeralUser records a backend user portcullis created for one session,
// so a sweeper can drop it if the session's node died.
type EphemeralUser struct {
	BackendUser string // unique
	Node        string
	SessionID   string
	Created     time.Time
}

// Engines for Config.Engine.
const (
	EngineSQLite = "sqlite"
	EngineMySQL  = "mysql"
)

// Config picks and locates the engine.
type Config struct {
	Engine string // EngineSQLite (default) or EngineMySQL
	Path   string // sqlite: the database file
	DSN    string // mysql: a go-sql-driver DSN, e.g. user:pw@tcp(db:3306)/portcullis
}

// Open opens the store cfg describes and migrates it.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	switch cfg.Engine {
	case "", EngineSQLite:
		return OpenSQLite(ctx, cfg.Path)
	case EngineMySQL:
		return OpenMySQL(ctx, cfg.DSN)
	default:
		return nil, fmt.Errorf("open store: unknown engine %q (want %q or %q)", cfg.Engine, EngineSQLite, EngineMySQL)
	}
}
