// Package saml is portcullis' SAML 2.0 service provider, built on
// github.com/crewjam/saml (with github.com/russellhaering/goxmldsig held at
// 1.6.1 or later in go.mod: earlier versions have a signature bypass).
//
// One SP per configured connection: it publishes the SP metadata (one
// HTTP-POST assertion consumer service), makes the AuthnRequest for the
// HTTP-Redirect binding, and validates the IdP's response: the signature
// over the response or the assertion with the certificate of the IdP's
// configured metadata, exactly one assertion (an extra, unsigned one is
// the mark of XML signature wrapping), audience, destination and
// recipient, NotBefore/NotOnOrAfter, InResponseTo of the request this
// login made, and a replay cache of assertion IDs kept until they expire.
//
// Its boundary: it knows the IdP and nothing of portcullis' users or
// tokens; the portal decides what a login grants.
package saml
