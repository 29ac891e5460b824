package auth_test

import (
	"encoding/json"
	"testing"
)

// TestVerifyRefusesCrit: a token whose header lists critical extensions
// (RFC 7515 §4.1.11) is refused, whatever it lists and however well it is
// signed: the checker understands none, so it must not accept the token.
func TestVerifyRefusesCrit(t *testing.T) {
	v := testVerifier(t)
	_, e, _ := testKeys(t)
	payload, err := json.Marshal(claims(urlIss))
	if err != nil {
		t.Fatal(err)
	}
	for _, header := range []string{
		`{"alg":"ES256","kid":"ec-1","typ":"JWT","crit":["exp"]}`,
		`{"alg":"ES256","kid":"ec-1","typ":"JWT","crit":["b64"],"b64":false}`,
		`{"alg":"ES256","kid":"ec-1","typ":"JWT","crit":[]}`,
	} {
		tok := mintRaw(t, e, header, string(payload))
		_, err := v.Verify(t.Context(), tok)
		checkDenied(t, tok, err, `token header has "crit"`, "RFC 7515")
	}
	// The same token without crit is good: the refusal is crit's alone.
	if _, err := v.Verify(t.Context(), mintRaw(t, e, esHeader, string(payload))); err != nil {
		t.Fatalf("without crit: %v", err)
	}
}
