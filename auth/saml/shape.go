package saml

import (
	"github.com/beevik/etree"
)

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
)

// maxResponseBytes bounds a decoded SAML response.
const maxResponseBytes = 256 << 10

// checkShape refuses a response that is not a Response holding exactly
// one Assertion as a direct child, anywhere in the document. XML
// signature wrapping hides a signed assertion beside (or inside) a forged
// one and counts on the validator and the reader picking different ones;
// with one assertion there is nothing to pick from. Encrypted assertions
// are refused: this SP publishes no encryption key.
func checkShape(raw []byte) error {
	if len(raw) > maxResponseBytes {
		return refused("the SAML response is over %d KiB", maxResponseBytes>>10)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return refused("the SAML response is not XML")
	}
	root := doc.Root()
	if root == nil || root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return refused("the SAML message is not a Response")
	}
	var assertions, encrypted, direct int
	var walk func(el *etree.Element, depth int)
	walk = func(el *etree.Element, depth int) {
		for _, c := range el.ChildElements() {
			if c.NamespaceURI() == nsAssertion {
				switch c.Tag {
				case "Assertion":
					assertions++
					if depth == 0 {
						direct++
					}
				case "EncryptedAssertion":
					encrypted++
				}
			}
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	switch {
	case encrypted > 0:
		return refused("the SAML response holds an encrypted assertion, which this service provider does not accept: turn assertion encryption off at the IdP")
	case assertions != 1 || direct != 1:
		return refused("the SAML response holds %d assertions; exactly one, directly in the Response, is accepted (XML signature wrapping?)", assertions)
	}
	return nil
}
