// Package username owns the one form portcullis compares and stores user
// names in. Every place that matches a user name (the store's unique keys,
// SCIM, the user name a token carries, the MySQL user name the proxy
// checks it against, SSO and local logins) calls Normalize, so two
// spellings are the same user everywhere or nowhere.
//
// Normalize trims leading and trailing spaces (Unicode space separators),
// applies Unicode NFKC, then full case folding (golang.org/x/text/cases
// Fold), repeating until the result is stable. It refuses, with an error
// that names the character and its position, names holding
//
//   - control characters (NUL, tab, newline, vertical tab, DEL, C1 controls),
//   - zero-width characters (U+200B..U+200D, U+2060, U+FEFF, U+180E),
//   - bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
//     U+2066..U+2069),
//   - other invisible format characters (Unicode category Cf), line and
//     paragraph separators, private-use and unassigned code points, the
//     replacement character and invalid UTF-8,
//
// and names that are empty once trimmed.
//
// The Kelvin sign (U+212A) is the choice that shows the rule: NFKC turns
// it into the Latin letter K and case folding into k, so "\u212Aate" and
// "Kate" are both the user kate, in the store, in SCIM, at the proxy and
// at login. It is never "a different user who looks the same": a look-
// alike spelling either folds to the same name or is refused. The same
// holds for full-width letters (ｋａｔｅ is kate), ligatures (ﬁ is fi)
// and ß, which folds to ss.
//
// Display is the validated, trimmed name as it was given (case kept), for
// storing beside the key and showing to people; Equal says whether two
// names are the same user. Neither is a second rule: both are Normalize.
//
// The package imports only the standard library and golang.org/x/text.
package username
