package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/xml"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
)

// testIdP is crewjam's IdentityProvider, driven without HTTP: it reads
// the SP's AuthnRequest and answers with a signed response.
type testIdP struct {
	idp *crewsaml.IdentityProvider
	sp  *SP
}

func (p *testIdP) GetServiceProvider(*http.Request, string) (*crewsaml.EntityDescriptor, error) {
	md, err := p.sp.Metadata()
	if err != nil {
		return nil, err
	}
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal(md, &ed); err != nil {
		return nil, err
	}
	return &ed, nil
}

func newTestIdP(t *testing.T, usernameAttr string) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	base, _ := url.Parse("https://idp.test")
	p := &testIdP{idp: &crewsaml.IdentityProvider{Key: key, Certificate: cert,
		MetadataURL: *base.JoinPath("metadata"), SSOURL: *base.JoinPath("sso")}}
	p.idp.ServiceProviderProvider = p
	md, err := xml.Marshal(p.idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	p.sp, err = New(Config{Name: "test", MetadataURL: "https://portcullis.test/v1/sso/saml/test/metadata",
		ACSURL: "https://portcullis.test/v1/sso/saml/test/acs", IDPMetadata: md, UsernameAttribute: usernameAttr})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// respond logs session in for the SP's request requestID and returns
// the base64 response the IdP would post.
func (p *testIdP) respond(t *testing.T, requestID string, session *crewsaml.Session) string {
	t.Helper()
	u, err := p.sp.AuthnRequestURL(requestID, "relay")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, u, nil)
	req, err := crewsaml.NewIdpAuthnRequest(p.idp, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (crewsaml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		t.Fatal(err)
	}
	form, err := req.PostBinding()
	if err != nil {
		t.Fatal(err)
	}
	return form.SAMLResponse
}

func session(email string) *crewsaml.Session {
	return &crewsaml.Session{ID: "s1", NameID: email, UserEmail: email, UserName: "alice", CreateTime: time.Now(), Index: "1",
		CustomAttributes: []crewsaml.Attribute{{Name: "portcullis_role", Values: []crewsaml.AttributeValue{{Value: "member"}}}}}
}

func TestParseResponse(t *testing.T) {
	p := newTestIdP(t, "")
	t.Run("a signed response for this request", func(t *testing.T) {
		a, err := p.sp.ParseResponse(p.respond(t, "id-one", session("alice@corp.test")), "id-one")
		if err != nil {
			t.Fatal(err)
		}
		if a.Identity.Username != "alice@corp.test" || a.Identity.Email != "alice@corp.test" ||
			strings.Join(a.Identity.Attributes["portcullis_role"], ",") != "member" || a.Expires.Before(time.Now()) {
			t.Fatalf("assertion %+v", a)
		}
	})
	t.Run("the same response again is a replay", func(t *testing.T) {
		resp := p.respond(t, "id-two", session("alice@corp.test"))
		if _, err := p.sp.ParseResponse(resp, "id-two"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.sp.ParseResponse(resp, "id-two"); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("replay: %v", err)
		}
	})
	t.Run("a response to another request", func(t *testing.T) {
		_, err := p.sp.ParseResponse(p.respond(t, "id-three", session("alice@corp.test")), "id-other")
		if err == nil || !strings.Contains(err.Error(), "InResponseTo") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not base64", func(t *testing.T) {
		if _, err := p.sp.ParseResponse("%%%", "id-x"); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestUsernameAttribute(t *testing.T) {
	p := newTestIdP(t, "uid")
	a, err := p.sp.ParseResponse(p.respond(t, "id-u", session("alice@corp.test")), "id-u")
	if err != nil || a.Identity.Username != "alice" {
		t.Fatalf("username from uid: %+v %v", a.Identity, err)
	}
	p = newTestIdP(t, "employeeNumber")
	_, err = p.sp.ParseResponse(p.respond(t, "id-v", session("alice@corp.test")), "id-v")
	if err == nil || !strings.Contains(err.Error(), `no "employeeNumber" attribute`) {
		t.Fatalf("missing attribute: %v", err)
	}
}

func TestCheckShape(t *testing.T) {
	const (
		p = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"`
		a = `xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`
	)
	tests := []struct {
		name, xml, want string
	}{
		{"one assertion", `<samlp:Response ` + p + ` ` + a + `><saml:Assertion/></samlp:Response>`, ""},
		{"two assertions", `<samlp:Response ` + p + ` ` + a + `><saml:Assertion/><saml:Assertion/></samlp:Response>`, "2 assertions"},
		{"an assertion hidden deeper", `<samlp:Response ` + p + ` ` + a + `><samlp:Extensions><saml:Assertion/></samlp:Extensions><saml:Assertion/></samlp:Response>`, "2 assertions"},
		{"only a nested assertion", `<samlp:Response ` + p + ` ` + a + `><x><saml:Assertion/></x></samlp:Response>`, "1 assertions"},
		{"none", `<samlp:Response ` + p + `/>`, "0 assertions"},
		{"encrypted", `<samlp:Response ` + p + ` ` + a + `><saml:EncryptedAssertion/></samlp:Response>`, "encrypted"},
		{"not a Response", `<samlp:LogoutRequest ` + p + `/>`, "not a Response"},
		{"a Response of another namespace", `<Response><Assertion/></Response>`, "not a Response"},
		{"not XML", `<<<`, "not XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkShape([]byte(tt.xml))
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("checkShape = %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzCheckShape: the first look at untrusted SAML input never panics.
func FuzzCheckShape(f *testing.F) {
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkShape(data)
	})
}

func TestReplayCache(t *testing.T) {
	c := newReplayCache(2)
	soon := time.Now().Add(time.Minute)
	if replayed, full := c.add("a", soon); replayed || full {
		t.Fatal("first add refused")
	}
	if replayed, _ := c.add("a", soon); !replayed {
		t.Fatal("a replay was not seen")
	}
	c.add("b", time.Now().Add(-time.Second)) // already expired: swept when room is needed
	if replayed, full := c.add("c", soon); replayed || full {
		t.Fatal("an expired entry was not swept")
	}
	if _, full := c.add("d", soon); !full {
		t.Fatal("a full cache accepted more")
	}
}

func TestMetadataHasOnlyPOST(t *testing.T) {
	p := newTestIdP(t, "")
	md, err := p.sp.Metadata()
	if err != nil || !strings.Contains(string(md), crewsaml.HTTPPostBinding) || strings.Contains(string(md), crewsaml.HTTPArtifactBinding) {
		t.Fatalf("metadata %v:\n%s", err, md)
	}
}

func TestIDPMetadataProblems(t *testing.T) {
	tests := []struct{ name, xml, want string }{
		{"empty", ``, "empty"},
		{"not metadata", `<x/>`, "not SAML metadata"},
		{"no signing certificate", `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>`, "no signing certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{MetadataURL: "https://p/md", ACSURL: "https://p/acs", IDPMetadata: []byte(tt.xml)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestInvisibleCharactersRefused: a user name or email with a zero-width
// or bidi character is refused (auth/username), naming the character.
// (XML 1.0 cannot carry NUL or vertical tab at all.)
func TestInvisibleCharactersRefused(t *testing.T) {
	p := newTestIdP(t, "")
	_, err := p.sp.ParseResponse(p.respond(t, "id-zw", session("ali\u200bce@corp.test")), "id-zw")
	if err == nil || !strings.Contains(err.Error(), "zero-width character (U+200B) at position 4") {
		t.Fatalf("NameID with a zero-width space: %v", err)
	}
	p = newTestIdP(t, "uid")
	_, err = p.sp.ParseResponse(p.respond(t, "id-bidi", session("alice\u202e@corp.test")), "id-bidi")
	if err == nil || !strings.Contains(err.Error(), "email cannot be used") || !strings.Contains(err.Error(), "U+202E") {
		t.Fatalf("email with a bidi override: %v", err)
	}
}
