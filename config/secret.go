package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secret is a value given by reference in the config file: "${env:NAME}"
// or "file:PATH". Load resolves it; String never reveals it, so a Secret
// can be logged or printed by accident without leaking.
type Secret struct {
	Ref   string // as written in the file, e.g. "${env:DBA_PW}"
	value string // resolved by Load
}

// Value is the resolved secret.
func (s Secret) Value() string { return s.value }

// String hides the value.
func (s Secret) String() string { return "[redacted]" }

// The forms a Secret's Ref may take.
const (
	envPrefix  = "${env:"
	envSuffix  = "}"
	filePrefix = "file:"
)

type secretKind int

const (
	secretEmpty  secretKind = iota // "": an empty password
	secretEnv                      // "${env:NAME}"
	secretFile                     // "file:PATH"
	secretInline                   // anything else: refused
)

// kind classifies Ref and returns the variable name or path it names.
func (s Secret) kind() (secretKind, string) {
	switch {
	case s.Ref == "":
		return secretEmpty, ""
	case strings.HasPrefix(s.Ref, envPrefix) && strings.HasSuffix(s.Ref, envSuffix):
		return secretEnv, strings.TrimSuffix(strings.TrimPrefix(s.Ref, envPrefix), envSuffix)
	case strings.HasPrefix(s.Ref, filePrefix):
		return secretFile, strings.TrimPrefix(s.Ref, filePrefix)
	default:
		return secretInline, ""
	}
}

// safeRef is Ref, unless Ref is an inline literal, which may be the secret.
func (s Secret) safeRef() string {
	if k, _ := s.kind(); k == secretInline {
		return "[redacted]"
	}
	return s.Ref
}

// UnmarshalYAML takes the reference as written. It resolves nothing: Load
// does that after decoding, so that every problem is reported together.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		// A TypeError is collected by the decoder rather than aborting it.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf(
			"line %d: a secret must be a string: write it as ${env:NAME}, file:PATH or \"\"", n.Line)}}
	}
	*s = Secret{Ref: n.Value}
	return nil
}

// Format hides the value under every verb, including %#v and %d, which would
// otherwise print the struct's fields.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprintf(f, "config.Secret{Ref:%q}", s.safeRef())
		return
	}
	io.WriteString(f, s.String())
}

// MarshalJSON writes the reference, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.safeRef()) }

// MarshalYAML writes the reference, never the value.
func (s Secret) MarshalYAML() (any, error) { return s.safeRef(), nil }

// validEnvName reports whether name is a usable environment variable name.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// refProblem is what is wrong with the form of the reference, or "".
func (s Secret) refProblem() string {
	k, arg := s.kind()
	switch {
	case k == secretInline:
		return "write the secret as ${env:NAME} or file:PATH, not inline"
	case k == secretEnv && !validEnvName(arg):
		return fmt.Sprintf("%q is not an environment variable name: write ${env:NAME} with NAME like DBA_PW", arg)
	case k == secretFile && arg == "":
		return "file: names no path: write file:PATH"
	}
	return ""
}

// resolve reads the value the reference names; relative file paths are
// relative to baseDir. The problem it returns names the variable or the
// path, never the content.
func (s *Secret) resolve(baseDir string) (problem string) {
	if p := s.refProblem(); p != "" {
		return p
	}
	k, arg := s.kind()
	switch k {
	case secretEnv:
		v, ok := os.LookupEnv(arg)
		if !ok {
			return fmt.Sprintf("env var %s is not set", arg)
		}
		s.value = v
	case secretFile:
		path := resolvePath(baseDir, arg)
		b, err := os.ReadFile(path)
		if err != nil {
			// A *PathError's message is "op path: reason": no content.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Sprintf("cannot read secret file %s: %v", path, err)
		}
		s.value = strings.TrimRight(string(b), "\r\n")
	default:
		s.value = ""
	}
	return ""
}
