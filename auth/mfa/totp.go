package mfa

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Period is the TOTP time step; Skew the steps accepted either side of
// now (clock drift, RFC 6238 section 5.2).
const (
	Period = 30
	Skew   = 1
	Digits = otp.DigitsSix
)

// Errors of Verify.
var (
	ErrBadCode = errors.New("the code is wrong or expired: enter the current code from your authenticator app")
	ErrReplay  = errors.New("this code was already used: wait for the next code from your authenticator app")
)

// Enrolment is a new TOTP secret, not yet confirmed.
type Enrolment struct {
	Secret string // base32, shown once
	URI    string // otpauth:// URI
	QRPNG  string // the URI as a PNG QR code, as a data: URL
}

// NewEnrolment makes a secret for account at issuer.
func NewEnrolment(issuer, account string) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrolment{}, err
	}
	return enrolment(key)
}

// EnrolmentFor rebuilds the enrolment view of an existing secret.
func EnrolmentFor(issuer, account, secret string) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: Period, Digits: Digits,
		Algorithm: otp.AlgorithmSHA1, Secret: mustBase32(secret)})
	if err != nil {
		return Enrolment{}, err
	}
	return enrolment(key)
}

func enrolment(key *otp.Key) (Enrolment, error) {
	img, err := key.Image(200, 200)
	if err != nil {
		return Enrolment{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL(), QRPNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// Verify checks code against secret at now and returns the time step it
// matched. A step at or before lastStep (the step of the last code
// accepted) is a replay and refused: each code works once.
func Verify(secret, code string, now time.Time, lastStep int64) (int64, error) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != Digits.Length() {
		return 0, ErrBadCode
	}
	cur := now.Unix() / Period
	matched := int64(-1)
	for d := int64(-Skew); d <= Skew; d++ {
		step := cur + d
		ok, err := totp.ValidateCustom(code, secret, time.Unix(step*Period, 0).UTC(),
			totp.ValidateOpts{Period: Period, Skew: 0, Digits: Digits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && ok {
			matched = step
		}
	}
	switch {
	case matched < 0:
		return 0, ErrBadCode
	case matched <= lastStep:
		return 0, ErrReplay
	}
	return matched, nil
}

// RecoveryCount is how many recovery codes a user gets.
const RecoveryCount = 10

// NewRecoveryCodes returns codes to show once and the hashes to keep.
// Each code has 60 random bits, so a plain SHA-256 suffices.
func NewRecoveryCodes() (codes []string, hashes []string) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	for range RecoveryCount {
		b := make([]byte, 12)
		rand.Read(b)
		var sb strings.Builder
		for i, c := range b {
			if i == 6 {
				sb.WriteByte('-')
			}
			sb.WriteByte(alphabet[int(c)%len(alphabet)])
		}
		codes = append(codes, sb.String())
		hashes = append(hashes, HashRecovery(sb.String()))
	}
	return codes, hashes
}

// HashRecovery is what is kept of a recovery code.
func HashRecovery(code string) string {
	code = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(code), " ", ""))
	sum := sha256.Sum256([]byte("portcullis recovery\x00" + code))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// UseRecovery finds code among hashes and returns the hashes without it;
// ok is false when the code is not there (unknown or used).
func UseRecovery(hashes []string, code string) (rest []string, ok bool) {
	h := HashRecovery(code)
	idx := -1
	for i, x := range hashes {
		if subtle.ConstantTimeCompare([]byte(x), []byte(h)) == 1 {
			idx = i
		}
	}
	if idx < 0 {
		return hashes, false
	}
	rest = append(append([]string{}, hashes[:idx]...), hashes[idx+1:]...)
	return rest, true
}

func mustBase32(s string) []byte {
	b, err := base32NoPad.DecodeString(strings.ToUpper(strings.TrimRight(s, "=")))
	if err != nil {
		return nil
	}
	return b
}
