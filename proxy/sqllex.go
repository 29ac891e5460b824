package proxy

import (
	"reflect"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	tidbmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	// The lexer builds literal values through a driver; this is the
	// parser module's own light one.
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// The statement guard reads SQL with the TiDB parser's lexer, a maintained
// MySQL lexer (strings and their escapes, quoted identifiers, the three
// comment forms, `/*! */` executable comments, hex and bit literals,
// charset introducers). Its token ids and its symbol type are unexported:
// the ids are learnt here once by lexing a sample of each kind, the symbol
// type is reached through type inference, and the two fields the guard
// needs from it (the token's text and offset) and the scanner's position
// after a token are read with reflect, which reads but never writes them.

// tokenKind is what the guard needs to know of a token.
type tokenKind uint8

const (
	tokEnd    tokenKind = iota // end of input
	tokWord                    // a keyword or an unquoted identifier
	tokQuoted                  // a quoted identifier
	tokString                  // a string literal; text is its value
	tokVar                     // @user_variable or @@system_variable
	tokNumber                  // an integer literal
	tokSemi                    // ';'
	tokOther                   // any other literal or punctuation
	tokBad                     // what the lexer could not read
)

// token is one lexed token: text is the word as written, or a string's
// value; off and end are its bytes in the input.
type token struct {
	kind     tokenKind
	text     string
	off, end int
}

func (t token) is(word string) bool { return t.kind == tokWord && strings.EqualFold(t.text, word) }

// lexIDs are the lexer's token ids, learnt from samples.
var lexIDs struct {
	once                                             sync.Once
	ident, str, at, atat, integer, invalid, hex, bit int
	// reflect paths into the symbol and the scanner
	symOffset, symIdent int
	readerField         int
	posField, offField  int
}

// lexFirst is the id of the first token of sample.
func lexFirst(sample string) int {
	s := parser.NewScanner(sample)
	return firstID(s.Lex)
}

func firstID[T any](lex func(*T) int) int {
	var v T
	return lex(&v)
}

func learnLexIDs() {
	lexIDs.ident = lexFirst("abc")
	lexIDs.str = lexFirst("'a'")
	lexIDs.at = lexFirst("@a")
	lexIDs.atat = lexFirst("@@a")
	lexIDs.integer = lexFirst("1")
	lexIDs.invalid = lexFirst("'a")
	lexIDs.hex = lexFirst("0x01")
	lexIDs.bit = lexFirst("0b1")
	symFields(parser.NewScanner("").Lex)
	st := reflect.TypeOf(parser.Scanner{})
	r, _ := st.FieldByName("r")
	lexIDs.readerField = r.Index[0]
	p, _ := r.Type.FieldByName("p")
	lexIDs.posField = p.Index[0]
	o, _ := p.Type.FieldByName("Offset")
	lexIDs.offField = o.Index[0]
}

// lexSQL returns the tokens of sql as MariaDB would read them in mode
// (the session's sql_mode matters for backslashes and double quotes);
// ok is false when the lexer reported an error, such as an unclosed
// string or comment.
func lexSQL(sql string, mode tidbmysql.SQLMode) (toks []token, ok bool) {
	lexIDs.once.Do(learnLexIDs)
	s := parser.NewScanner(sql)
	s.SetSQLMode(mode)
	return drain(s, s.Lex, sql)
}

// symFields learns where the symbol type keeps a token's offset and text.
func symFields[T any](func(*T) int) {
	f, _ := reflect.TypeFor[T]().FieldByName("offset")
	i, _ := reflect.TypeFor[T]().FieldByName("ident")
	lexIDs.symOffset, lexIDs.symIdent = f.Index[0], i.Index[0]
}

func drain[T any](s *parser.Scanner, lex func(*T) int, sql string) ([]token, bool) {
	var v T
	sym := reflect.ValueOf(&v).Elem()
	pos := reflect.ValueOf(s).Elem().Field(lexIDs.readerField).Field(lexIDs.posField).Field(lexIDs.offField)
	toks := make([]token, 0, 16)
	last := -1
	for {
		id := lex(&v)
		off := int(sym.Field(lexIDs.symOffset).Int())
		end := int(pos.Int())
		if id != 0 && end <= last {
			// The lexer did not move on: treat the rest as unreadable
			// rather than loop.
			return append(toks, token{kind: tokBad, off: off, end: len(sql)}), false
		}
		last = end
		text := sym.Field(lexIDs.symIdent).String()
		t := token{off: off, end: max(end, off), text: text}
		switch {
		case id == 0:
			t.kind, t.off, t.end = tokEnd, len(sql), len(sql)
			toks = append(toks, t)
			_, errs := s.Errors()
			return toks, len(errs) == 0
		case id == lexIDs.invalid:
			t.kind = tokBad
		case id == ';':
			t.kind = tokSemi
		case id == lexIDs.str:
			t.kind = tokString
			if off < len(sql) && sql[off] != '\'' && sql[off] != '"' {
				t.kind = tokOther // N'...' and similar
			}
		case id == lexIDs.at || id == lexIDs.atat:
			t.kind = tokVar
		case id == lexIDs.integer:
			t.kind = tokNumber
			t.text = sql[off:t.end]
		case id == lexIDs.hex || id == lexIDs.bit:
			t.kind = tokOther
		case off < len(sql) && (sql[off] == '`' || sql[off] == '"'):
			t.kind = tokQuoted
		case isWordStart(text):
			t.kind = tokWord
		default:
			t.kind = tokOther
		}
		toks = append(toks, t)
		if t.kind == tokBad {
			return toks, false
		}
	}
}

func isWordStart(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
