// Package config is the portcullis.yaml schema: plain structs with yaml tags,
// their documented defaults, strict decoding and validation.
//
// Load (or Parse, for bytes) runs the whole pipeline: decode strictly, so an
// unknown key is an error naming the key and its line; apply the defaults;
// resolve relative paths against the config file's directory; resolve
// secrets written as ${env:NAME} or file:PATH; then Validate. Every problem
// found along the way is reported at once, in one error:
//
//	invalid configuration in portcullis.yaml:
//	  issuers[0].jwks_url: "http://idp.example/jwks" must use https:// (http:// only on a loopback host, for tests) (line 7)
//	  roles.dba.backend_password: env var DBA_PW is not set (line 14)
//
// A secret's value never appears in an error or in the printed Config; see
// Secret.
//
// Boundary: config reads the config file and the files and environment
// variables it names, and stats the files it must check. It opens no network
// connection and imports no other portcullis package; everything else
// imports config.
package config
