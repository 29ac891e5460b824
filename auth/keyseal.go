package auth

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
)

// KeySealer seals private keys for the store: AES-256-GCM under
// SHA-256(key-encryption key), bound to a name (the AAD) so a sealed key
// cannot be moved to another row. The token issuer's signing keys and the
// client-leg certificates' keys are sealed with it.
type KeySealer struct{ aead cipher.AEAD }

// NewKeySealer returns a sealer for kek, which must be at least 16 bytes.
func NewKeySealer(kek []byte) (*KeySealer, error) {
	if len(kek) < 16 {
		return nil, errors.New("the key-encryption key is shorter than 16 bytes: use 32 random bytes")
	}
	sum := sha256.Sum256(kek)
	block, _ := aes.NewCipher(sum[:])
	aead, _ := cipher.NewGCM(block)
	return &KeySealer{aead: aead}, nil
}

// Seal returns key, PKCS#8-encoded and sealed under name.
func (k *KeySealer) Seal(key crypto.Signer, name string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, der, []byte(name)), nil
}

// Open returns the key Seal sealed under name.
func (k *KeySealer) Open(sealed []byte, name string) (crypto.Signer, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("stored key is truncated")
	}
	der, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return nil, errors.New("cannot decrypt the stored key: is the key-encryption key the one it was stored with?")
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("stored key is not a signing key")
	}
	return signer, nil
}
