package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// sealer encrypts and authenticates small values with AES-256-GCM under
// a key derived for one purpose, so a value sealed for one use cannot be
// opened as another.
type sealer struct{ aead cipher.AEAD }

func deriveKey(key []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, key, nil, purpose, 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce; 32 it can
	}
	return k
}

func newSealer(key []byte, purpose string) sealer {
	block, _ := aes.NewCipher(deriveKey(key, purpose))
	aead, _ := cipher.NewGCM(block)
	return sealer{aead: aead}
}

// seal returns base64url(nonce | ciphertext); aad binds it to a context.
func (s sealer) seal(plain []byte, aad string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(aad)))
}

var errUnsealed = errors.New("sealed value is damaged, forged or from another context")

func (s sealer) open(sealed, aad string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return nil, errUnsealed
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		return nil, errUnsealed
	}
	return plain, nil
}

// randomToken is n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is what the store keeps of a code or refresh token: the
// SHA-256 of the value under a label, so a value of one kind never
// matches the hash of another.
func hashSecret(kind, value string) []byte {
	sum := sha256.Sum256([]byte("portcullis " + kind + "\x00" + value))
	return sum[:]
}

// pkceMatches checks an S256 code_verifier against its challenge, in
// constant time.
func pkceMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return len(verifier) >= 43 && len(verifier) <= 128 && subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// samlRequestID derives the AuthnRequest ID from the RelayState, so the
// ACS knows which InResponseTo to expect without server-side state.
func samlRequestID(key []byte, relayState string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(relayState))
	return "id-" + hex.EncodeToString(m.Sum(nil)[:20])
}

// shortCodeAlphabet has no 0/O, 1/I/L or U: easy to read and type.
const shortCodeAlphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

// shortCode is a code to read off a page and paste: 10 characters (49
// bits), shown as XXXXX-XXXXX. It is single use, short lived and bound
// to the CLI's PKCE challenge, so guessing it gains nothing.
func shortCode() string {
	var sb strings.Builder
	b := make([]byte, 1)
	for n := 0; n < 10; {
		rand.Read(b)
		if int(b[0]) >= 256/len(shortCodeAlphabet)*len(shortCodeAlphabet) {
			continue // no modulo bias
		}
		if n == 5 {
			sb.WriteByte('-')
		}
		sb.WriteByte(shortCodeAlphabet[int(b[0])%len(shortCodeAlphabet)])
		n++
	}
	return sb.String()
}

// normalizeCode makes a pasted short code canonical; long codes pass
// unchanged.
func normalizeCode(code string) string {
	code = strings.TrimSpace(code)
	if len(code) > 16 {
		return code
	}
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
}
