package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullisdb/portcullis/config"
)

// Defaults of the dev issuer, the same as config's documented ones.
const (
	devDefaultIssuer   = "portcullis-dev"
	devDefaultAudience = "portcullis"
	devDefaultTTL      = time.Hour
	devMaxTTL          = 24 * time.Hour
)

// DevIssuer is portcullis' own development issuer, for `make run` and tests:
// it signs ES256 tokens with a local P-256 key. A Verifier given a DevIssuer
// trusts its tokens under the issuer name "dev".
type DevIssuer struct {
	cfg config.DevIssuer // defaults applied
	key *ecdsa.PrivateKey
	kid string
}

// InitDevKey makes the dev issuer's key: an ECDSA P-256 key written to path
// as PKCS#8 PEM, mode 0600, creating missing parent folders with mode 0700.
// An existing file is left as it is and created is false.
func InitDevKey(path string) (created bool, err error) {
	if info, err := os.Stat(path); err == nil {
		if info.IsDir() {
			return false, fmt.Errorf("dev issuer key %s is a folder: point key_file at a file", path)
		}
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("dev issuer key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("dev issuer key: create folder: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, fmt.Errorf("dev issuer key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, fmt.Errorf("dev issuer key: encode: %w", err)
	}
	// O_EXCL: never overwrite a key that appeared since the Stat.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dev issuer key: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, fmt.Errorf("dev issuer key: write %s: %w", path, err)
	}
	return true, nil
}

// LoadDevIssuer reads the dev issuer's key from cfg.KeyFile and applies the
// defaults of the other fields (issuer "portcullis-dev", audience
// "portcullis", token TTL 1h).
func LoadDevIssuer(cfg config.DevIssuer) (*DevIssuer, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = devDefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = devDefaultAudience
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = devDefaultTTL
	}
	if cfg.TokenTTL < 0 || cfg.TokenTTL > devMaxTTL {
		return nil, fmt.Errorf("dev_issuer.token_ttl: %v is outside (0, %v]", cfg.TokenTTL, devMaxTTL)
	}
	if cfg.KeyFile == "" {
		return nil, errors.New("dev_issuer.key_file: is empty: name the key file `portcullis keys init` writes")
	}
	key, err := readDevKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key %s: %w", cfg.KeyFile, err)
	}
	sum := sha256.Sum256(der)
	return &DevIssuer{cfg: cfg, key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:8])}, nil
}

// readDevKey reads a P-256 private key from a PEM file (PKCS#8, or SEC 1
// "EC PRIVATE KEY"). Errors name the file, never its content.
func readDevKey(path string) (*ecdsa.PrivateKey, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dev issuer key %s does not exist: run `portcullis keys init` to create it: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		slog.Warn("dev issuer key file can be read by other users: chmod 600 it", "path", path, "mode", info.Mode().Perm().String())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	notKey := fmt.Errorf("dev issuer key %s is not a PEM ECDSA P-256 private key: run `portcullis keys init` with a new path to make one", path)
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, notKey
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, notKey
	}
	if err != nil {
		return nil, notKey
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, notKey
	}
	return key, nil
}

// Issuer is the `iss` of the tokens the dev issuer signs.
func (d *DevIssuer) Issuer() string { return d.cfg.Issuer }

// Audience is the default `aud` of the tokens the dev issuer signs; the
// Verifier accepts only this one.
func (d *DevIssuer) Audience() string { return d.cfg.Audience }

// MintRequest describes one dev token. Email is required (the Verifier uses
// it as the user name); Subject defaults to Email, TTL to the configured
// token_ttl (at most 24h), Audience to the configured audience.
type MintRequest struct {
	Subject  string
	Email    string
	Roles    []string
	Groups   []string
	TTL      time.Duration
	Audience string
}

// Mint signs an ES256 token for r, with the key id in its header and the
// claims iss, sub, aud, exp, iat, nbf, jti, email, and roles and groups when
// they are not empty.
func (d *DevIssuer) Mint(r MintRequest) (string, error) {
	if r.Email == "" {
		return "", errors.New("mint dev token: email is empty: it is the user name portcullis checks")
	}
	if r.Subject == "" {
		r.Subject = r.Email
	}
	if r.Audience == "" {
		r.Audience = d.cfg.Audience
	}
	switch {
	case r.TTL == 0:
		r.TTL = d.cfg.TokenTTL
	case r.TTL < 0:
		return "", fmt.Errorf("mint dev token: ttl %v is negative", r.TTL)
	case r.TTL > devMaxTTL:
		return "", fmt.Errorf("mint dev token: ttl %v exceeds the %v maximum", r.TTL, devMaxTTL)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("mint dev token: %w", err)
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":   d.cfg.Issuer,
		"sub":   r.Subject,
		"aud":   r.Audience,
		"exp":   jwt.NewNumericDate(now.Add(r.TTL)),
		"iat":   jwt.NewNumericDate(now),
		"nbf":   jwt.NewNumericDate(now),
		"jti":   hex.EncodeToString(jti[:]),
		"email": r.Email,
	}
	if len(r.Roles) > 0 {
		claims["roles"] = r.Roles
	}
	if len(r.Groups) > 0 {
		claims["groups"] = r.Groups
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = d.kid
	signed, err := tok.SignedString(d.key)
	if err != nil {
		return "", fmt.Errorf("mint dev token: %w", err)
	}
	return signed, nil
}

// JWKS returns the dev issuer's public key as a JSON Web Key Set, so that
// others can verify its tokens.
func (d *DevIssuer) JWKS() ([]byte, error) {
	jwk, err := jwkset.NewJWKFromKey(&d.key.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgES256, KID: d.kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("dev issuer jwks: %w", err)
	}
	ctx := context.Background()
	store := jwkset.NewMemoryStorage()
	if err := store.KeyWrite(ctx, jwk); err != nil {
		return nil, fmt.Errorf("dev issuer jwks: %w", err)
	}
	raw, err := store.JSONPublic(ctx)
	if err != nil {
		return nil, fmt.Errorf("dev issuer jwks: %w", err)
	}
	return raw, nil
}

// Name is the issuer name dev tokens are trusted under: "dev".
func (d *DevIssuer) Name() string { return devIssuerName }

// PublicKey returns the dev key for its kid. A token without a kid is
// taken as the dev key's: the dev issuer has only one.
func (d *DevIssuer) PublicKey(kid string) (crypto.PublicKey, bool) {
	if kid != "" && kid != d.kid {
		return nil, false
	}
	return &d.key.PublicKey, true
}

var _ LocalIssuer = (*DevIssuer)(nil)

// UsernameClaim: dev tokens name the user by email.
func (d *DevIssuer) UsernameClaim() string { return "email" }
