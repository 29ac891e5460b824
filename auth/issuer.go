package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/store"
)

// OwnIssuerName is the name portcullis' own tokens are trusted under.
const OwnIssuerName = "portcullis"

// Auth methods recorded in the auth_method claim.
const (
	MethodAWS   = "aws"
	MethodAzure = "azure"
	MethodGCP   = "gcp"
	MethodJWT   = "jwt"
	MethodOIDC  = "oidc"
	MethodSAML  = "saml"
	MethodLocal = "local"
)

// KeyStore is the part of the store the issuer needs.
type KeyStore interface {
	AddSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error)
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	RetireSigningKey(ctx context.Context, kid string, activeUntil, retireAfter time.Time) error
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int64, error)
}

// IssuerConfig configures TokenIssuer.
type IssuerConfig struct {
	URL      string // the `iss` of portcullis' tokens
	Audience string // the `aud` they carry
	Alg      string // store.AlgES256 (default) or store.AlgRS256
	// KEK encrypts private keys at rest (AES-256-GCM under SHA-256(KEK)).
	KEK []byte
	// MaxTTL caps every token's lifetime; a rotated-out key stays
	// published this long (plus clock leeway), so no token it signed
	// outlives its key.
	MaxTTL time.Duration
	Log    *slog.Logger
}

// TokenIssuer signs portcullis' own short-lived access tokens. Keys live
// in the store, so every node that shares it signs with the same key and
// publishes the same JWKS; Refresh picks up another node's rotation.
type TokenIssuer struct {
	cfg  IssuerConfig
	keys KeyStore
	seal *KeySealer
	ring atomic.Pointer[keyRing]
}

// keyRing is an immutable snapshot of the keys, swapped on refresh.
type keyRing struct {
	kid    string // the signing key's
	alg    string
	signer crypto.Signer
	public map[string]crypto.PublicKey
	jwks   []byte
}

// AccessClaims describe a token to issue.
type AccessClaims struct {
	Subject    string
	Username   string // the MySQL user name the holder connects as
	Roles      []string
	Groups     []string
	AuthMethod string
	TTL        time.Duration // capped at MaxTTL
	// LoginID names the login (refresh family) or workload exchange the
	// token comes from, as its "sid" claim, so that ending the login
	// refuses the token and ends its sessions.
	LoginID string
}

var _ LocalIssuer = (*TokenIssuer)(nil)

// NewTokenIssuer loads the keys from keys, creating the first signing key
// if there is none.
func NewTokenIssuer(ctx context.Context, cfg IssuerConfig, keys KeyStore) (*TokenIssuer, error) {
	if cfg.URL == "" || cfg.Audience == "" {
		return nil, errors.New("token issuer: URL and audience are required")
	}
	if len(cfg.KEK) < 16 {
		return nil, errors.New("token issuer: the key-encryption key is shorter than 16 bytes: use 32 random bytes")
	}
	if cfg.Alg == "" {
		cfg.Alg = store.AlgES256
	}
	if cfg.Alg != store.AlgES256 && cfg.Alg != store.AlgRS256 {
		return nil, fmt.Errorf("token issuer: algorithm %q is not supported: use ES256 or RS256", cfg.Alg)
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	seal, err := NewKeySealer(cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	ti := &TokenIssuer{cfg: cfg, keys: keys, seal: seal}
	if err := ti.Refresh(ctx); err != nil {
		return nil, err
	}
	if ti.ring.Load().signer == nil {
		if _, err := ti.addKey(ctx); err != nil {
			return nil, err
		}
	}
	return ti, nil
}

// Refresh reloads the keys from the store and drops expired ones.
func (ti *TokenIssuer) Refresh(ctx context.Context) error {
	now := time.Now()
	if _, err := ti.keys.DeleteExpiredSigningKeys(ctx, now); err != nil {
		return fmt.Errorf("token issuer: %w", err)
	}
	list, err := ti.keys.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("token issuer: load keys: %w", err)
	}
	ring := &keyRing{public: map[string]crypto.PublicKey{}}
	set := jwkset.NewMemoryStorage()
	for _, k := range list {
		priv, err := ti.decrypt(k)
		if err != nil {
			return fmt.Errorf("token issuer: key %s: %w", k.KID, err)
		}
		pub := priv.Public()
		ring.public[k.KID] = pub
		alg := jwkset.AlgES256
		if k.Alg == store.AlgRS256 {
			alg = jwkset.AlgRS256
		}
		jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: alg, USE: jwkset.UseSig}})
		if err != nil {
			return fmt.Errorf("token issuer: key %s: %w", k.KID, err)
		}
		if err := set.KeyWrite(ctx, jwk); err != nil {
			return err
		}
		// The newest key still active signs (list is oldest first).
		if k.ActiveUntil == nil || k.ActiveUntil.After(now) {
			ring.kid, ring.alg, ring.signer = k.KID, k.Alg, priv
		}
	}
	if ring.jwks, err = set.JSONPublic(ctx); err != nil {
		return err
	}
	ti.ring.Store(ring)
	return nil
}

// Run refreshes the keys every interval until ctx ends, so a rotation
// on another node is picked up.
func (ti *TokenIssuer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ti.Refresh(ctx); err != nil {
				ti.cfg.Log.Warn("refresh signing keys", "err", err)
			}
		}
	}
}

// Rotate makes a new signing key. The previous one stops signing now and
// stays published until every token it signed has expired.
func (ti *TokenIssuer) Rotate(ctx context.Context) (kid string, err error) {
	old := ti.ring.Load()
	kid, err = ti.addKey(ctx)
	if err != nil {
		return "", err
	}
	now := time.Now()
	if old.kid != "" {
		if err := ti.keys.RetireSigningKey(ctx, old.kid, now, now.Add(ti.cfg.MaxTTL+clockLeeway)); err != nil {
			return "", fmt.Errorf("retire key %s: %w", old.kid, err)
		}
	}
	return kid, ti.Refresh(ctx)
}

func (ti *TokenIssuer) addKey(ctx context.Context) (string, error) {
	var priv crypto.Signer
	var err error
	if ti.cfg.Alg == store.AlgRS256 {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return "", err
	}
	kidBytes := make([]byte, 8)
	rand.Read(kidBytes)
	kid := hex.EncodeToString(kidBytes)
	sealed, err := ti.seal.Seal(priv, kid)
	if err != nil {
		return "", err
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	pubJSON, _ := json.Marshal(map[string]string{"kid": kid, "spki": hex.EncodeToString(pubDER)})
	if _, err := ti.keys.AddSigningKey(ctx, store.SigningKey{KID: kid, Alg: ti.cfg.Alg, PrivateKey: sealed, PublicJWK: pubJSON}); err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	return kid, ti.Refresh(ctx)
}

func (ti *TokenIssuer) decrypt(k store.SigningKey) (crypto.Signer, error) {
	return ti.seal.Open(k.PrivateKey, k.KID)
}

// Issue signs an access token and returns it with its expiry.
func (ti *TokenIssuer) Issue(c AccessClaims) (string, time.Time, error) {
	ring := ti.ring.Load()
	if ring.signer == nil {
		return "", time.Time{}, errors.New("token issuer has no signing key")
	}
	if c.Username == "" || c.Subject == "" {
		return "", time.Time{}, errors.New("token issuer: subject and username are required")
	}
	ttl := c.TTL
	if ttl <= 0 || ttl > ti.cfg.MaxTTL {
		ttl = ti.cfg.MaxTTL
	}
	now := time.Now()
	exp := now.Add(ttl)
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := jwt.MapClaims{
		"iss": ti.cfg.URL, "sub": c.Subject, "aud": ti.cfg.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "jti": hex.EncodeToString(jti),
		"username": c.Username, "auth_method": c.AuthMethod,
	}
	if c.LoginID != "" {
		claims["sid"] = c.LoginID
	}
	if len(c.Roles) > 0 {
		claims["roles"] = slices.Clone(c.Roles)
	}
	if len(c.Groups) > 0 {
		claims["groups"] = slices.Clone(c.Groups)
	}
	method := jwt.SigningMethod(jwt.SigningMethodES256)
	if ring.alg == store.AlgRS256 {
		method = jwt.SigningMethodRS256
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = ring.kid
	s, err := tok.SignedString(ring.signer)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// JWKS is the public key set, for /.well-known/jwks.json.
func (ti *TokenIssuer) JWKS() []byte { return ti.ring.Load().jwks }

// SigningKID is the kid new tokens carry.
func (ti *TokenIssuer) SigningKID() string { return ti.ring.Load().kid }

// Name, Issuer, Audience, UsernameClaim and PublicKey make the issuer a
// LocalIssuer, so the proxy trusts its tokens with no extra config.
func (ti *TokenIssuer) Name() string          { return OwnIssuerName }
func (ti *TokenIssuer) Issuer() string        { return ti.cfg.URL }
func (ti *TokenIssuer) Audience() string      { return ti.cfg.Audience }
func (ti *TokenIssuer) UsernameClaim() string { return "username" }
func (ti *TokenIssuer) PublicKey(kid string) (crypto.PublicKey, bool) {
	k, ok := ti.ring.Load().public[kid]
	return k, ok
}
