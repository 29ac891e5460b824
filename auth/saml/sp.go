package saml

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"
)

// Config describes one SAML connection.
type Config struct {
	Name        string // the connection's name, for messages
	MetadataURL string // where this SP's metadata is served
	ACSURL      string // the assertion consumer service (HTTP-POST)
	EntityID    string // default MetadataURL
	// IDPMetadata is the IdP's metadata document (EntityDescriptor, or
	// an EntitiesDescriptor holding one IdP).
	IDPMetadata []byte
	// UsernameAttribute names the attribute (Name or FriendlyName)
	// holding the user name; "" uses the NameID.
	UsernameAttribute string
	// ReplayCacheSize bounds the assertion IDs remembered; 0: 100000.
	ReplayCacheSize int
}

// SP is the service provider of one connection.
type SP struct {
	cfg    Config
	sp     *crewsaml.ServiceProvider
	replay *replayCache
}

// Identity is who the IdP says logged in.
type Identity struct {
	Subject     string // the NameID
	Username    string
	Email       string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Attributes holds every attribute's values by Name and by
	// FriendlyName, for the role attribute.
	Attributes map[string][]string
}

// Assertion is a validated assertion.
type Assertion struct {
	ID       string
	Expires  time.Time // the assertion is replayable until then, so its ID is remembered that long
	Identity Identity
}

// Error is a refused response, with a reason a person can act on.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

func refused(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// maxMetadataBytes bounds an IdP metadata document.
const maxMetadataBytes = 1 << 20

// New builds the SP from the IdP's metadata.
func New(cfg Config) (*SP, error) {
	if cfg.MetadataURL == "" || cfg.ACSURL == "" {
		return nil, errors.New("saml: metadata and ACS URLs are required")
	}
	if cfg.EntityID == "" {
		cfg.EntityID = cfg.MetadataURL
	}
	idp, err := parseIDPMetadata(cfg.IDPMetadata)
	if err != nil {
		return nil, fmt.Errorf("sso connection %s: IdP metadata: %w", cfg.Name, err)
	}
	metaURL, err := url.Parse(cfg.MetadataURL)
	if err != nil {
		return nil, fmt.Errorf("sso connection %s: metadata URL: %w", cfg.Name, err)
	}
	acsURL, err := url.Parse(cfg.ACSURL)
	if err != nil {
		return nil, fmt.Errorf("sso connection %s: ACS URL: %w", cfg.Name, err)
	}
	nameID := crewsaml.EmailAddressNameIDFormat
	if cfg.UsernameAttribute != "" {
		nameID = crewsaml.UnspecifiedNameIDFormat
	}
	s := &SP{cfg: cfg, replay: newReplayCache(cfg.ReplayCacheSize)}
	s.sp = &crewsaml.ServiceProvider{
		EntityID:          cfg.EntityID,
		MetadataURL:       *metaURL,
		AcsURL:            *acsURL,
		IDPMetadata:       idp,
		AuthnNameIDFormat: nameID,
		// Bearer assertions must name this SP (SAML profiles 4.1.4.2):
		// crewjam would accept an assertion with no audience at all.
		ValidateAudienceRestriction: s.checkAudience,
	}
	if s.sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding) == "" {
		return nil, fmt.Errorf("sso connection %s: the IdP's metadata has no SingleSignOnService with the HTTP-Redirect binding", cfg.Name)
	}
	return s, nil
}

// FetchMetadata reads an IdP's metadata from its URL.
func FetchMetadata(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch IdP metadata %s: %s", rawURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata %s: %w", rawURL, err)
	}
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("IdP metadata %s is over 1 MiB", rawURL)
	}
	return data, nil
}

// parseIDPMetadata reads an EntityDescriptor, or the one IdP of an
// EntitiesDescriptor, and checks it has a signing certificate.
func parseIDPMetadata(data []byte) (*crewsaml.EntityDescriptor, error) {
	if len(data) == 0 {
		return nil, errors.New("empty document")
	}
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal(data, &ed); err != nil || len(ed.IDPSSODescriptors) == 0 {
		var eds crewsaml.EntitiesDescriptor
		if err2 := xml.Unmarshal(data, &eds); err2 != nil {
			if err == nil {
				err = errors.New("no IDPSSODescriptor")
			}
			return nil, fmt.Errorf("not SAML metadata: %v", err)
		}
		found := false
		for _, e := range eds.EntityDescriptors {
			if len(e.IDPSSODescriptors) > 0 {
				ed, found = e, true
				break
			}
		}
		if !found {
			return nil, errors.New("no IdP (IDPSSODescriptor) in the document")
		}
	}
	if ed.EntityID == "" {
		return nil, errors.New("the IdP has no entityID")
	}
	hasCert := false
	for _, d := range ed.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if (k.Use == "" || k.Use == "signing") && len(k.KeyInfo.X509Data.X509Certificates) > 0 {
				hasCert = true
			}
		}
	}
	if !hasCert {
		return nil, errors.New("the IdP publishes no signing certificate, so its assertions cannot be verified")
	}
	return &ed, nil
}

// EntityID is the SP's entity id: the audience assertions must name.
func (s *SP) EntityID() string { return s.cfg.EntityID }

// Metadata is the SP metadata document, with only the HTTP-POST ACS
// (artifact resolution is not offered).
func (s *SP) Metadata() ([]byte, error) {
	md := s.sp.Metadata()
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		var post []crewsaml.IndexedEndpoint
		for _, e := range d.AssertionConsumerServices {
			if e.Binding == crewsaml.HTTPPostBinding {
				post = append(post, e)
			}
		}
		d.AssertionConsumerServices = post
	}
	out, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}

// AuthnRequestURL is the IdP URL (HTTP-Redirect binding) that carries a
// new AuthnRequest with the given ID, and relayState, which must be
// URL-safe.
func (s *SP) AuthnRequestURL(requestID, relayState string) (string, error) {
	req, err := s.sp.MakeAuthenticationRequest(s.sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding), crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		return "", err
	}
	req.ID = requestID
	u, err := req.Redirect(relayState, s.sp)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// ParseResponse validates the base64 SAMLResponse posted to the ACS for
// the AuthnRequest requestID and returns its assertion. An assertion seen
// before (until it expires) is refused.
func (s *SP) ParseResponse(samlResponse, requestID string) (Assertion, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(samlResponse))
	if err != nil {
		return Assertion{}, refused("the SAMLResponse is not base64")
	}
	if err := checkShape(raw); err != nil {
		return Assertion{}, err
	}
	a, err := s.sp.ParseXMLResponse(raw, []string{requestID}, s.sp.AcsURL)
	if err != nil {
		return Assertion{}, responseError(err)
	}
	if err := s.checkSubject(a, requestID); err != nil {
		return Assertion{}, err
	}
	out := Assertion{ID: a.ID, Expires: expiry(a)}
	if out.Identity, err = s.identity(a); err != nil {
		return Assertion{}, err
	}
	switch replayed, full := s.replay.add(a.ID, out.Expires); {
	case replayed:
		return Assertion{}, refused("this assertion was already used (a replayed SAML response): start the login again")
	case full:
		return Assertion{}, refused("too many SAML logins in the last minutes to remember them all: try again shortly")
	}
	return out, nil
}

// checkAudience requires an AudienceRestriction naming this SP.
func (s *SP) checkAudience(a *crewsaml.Assertion) error {
	if a.Conditions == nil {
		return errors.New("the assertion has no Conditions")
	}
	for _, r := range a.Conditions.AudienceRestrictions {
		if r.Audience.Value == s.cfg.EntityID {
			return nil
		}
	}
	return fmt.Errorf("the assertion's audience is not %q", s.cfg.EntityID)
}

// checkSubject requires a bearer subject confirmation in response to
// this request: crewjam checks each confirmation, but accepts none.
func (s *SP) checkSubject(a *crewsaml.Assertion, requestID string) error {
	if a.Subject == nil || a.Subject.NameID == nil || len(a.Subject.SubjectConfirmations) == 0 {
		return refused("the assertion has no subject confirmation")
	}
	for _, c := range a.Subject.SubjectConfirmations {
		if c.Method != "urn:oasis:names:tc:SAML:2.0:cm:bearer" || c.SubjectConfirmationData == nil ||
			c.SubjectConfirmationData.InResponseTo != requestID {
			return refused("the assertion is not a bearer assertion in response to this login")
		}
	}
	return nil
}

// expiry is the latest time the assertion is acceptable, clock skew
// included: its ID must be remembered until then.
func expiry(a *crewsaml.Assertion) time.Time {
	t := a.Conditions.NotOnOrAfter
	for _, c := range a.Subject.SubjectConfirmations {
		if c.SubjectConfirmationData != nil && c.SubjectConfirmationData.NotOnOrAfter.After(t) {
			t = c.SubjectConfirmationData.NotOnOrAfter
		}
	}
	if t.IsZero() {
		t = a.IssueInstant.Add(crewsaml.MaxIssueDelay)
	}
	return t.Add(crewsaml.MaxClockSkew)
}

// responseError words crewjam's refusal. Its private error names what
// failed (and URLs, never assertion content).
func responseError(err error) error {
	var ire *crewsaml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		err = ire.PrivateErr
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "signature element not present"):
		return refused("the SAML response is not signed: the IdP must sign the response or the assertion")
	case strings.Contains(msg, "cannot validate signature"), strings.Contains(msg, "Signature could not be verified"),
		strings.Contains(msg, "verify certificate"):
		return refused("the SAML response's signature does not verify with the IdP certificate in the configured metadata")
	case strings.Contains(msg, "expired"):
		return refused("the SAML assertion has expired (%s): log in again, and check the clocks of portcullis and the IdP", shorten(msg))
	case strings.Contains(msg, "audience"), strings.Contains(msg, "AudienceRestriction"):
		return refused("the SAML assertion is for another service provider: %s", shorten(msg))
	}
	return refused("the SAML response is not acceptable: %s", shorten(msg))
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
