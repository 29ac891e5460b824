package proxy

import (
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	tidbmysql "github.com/pingcap/tidb/pkg/parser/mysql"
)

// The statement guard decides about the SQL text of every COM_QUERY and
// COM_STMT_PREPARE before it reaches the backend. People who share a
// backend account (plan static, or a pooled connection) must not be able
// to change that account or its privileges, nor reach one another's
// sessions, so the guard refuses:
//
//   - account and privilege statements: SET PASSWORD, SET DEFAULT ROLE,
//     CREATE/ALTER/DROP/RENAME USER, CREATE/DROP ROLE, GRANT, REVOKE;
//   - KILL anywhere but as the only statement of a query, where the relay
//     checks that the thread is the caller's own (see killStatement);
//   - dynamic SQL the guard cannot read, PREPARE ... FROM @v and
//     EXECUTE IMMEDIATE <expression>, unless the role sets
//     allow_dynamic_sql: true.
//
// wherever they hide: any statement of a multi-statement packet, inside
// executable comments (`/*! */`, `/*!50000 */`, MariaDB's `/*M! */` and
// `/*M!100100 */`, all read as code whatever their version),
// `SET STATEMENT ... FOR`, the string of PREPARE ... FROM '...' and
// EXECUTE IMMEDIATE '...' (read again, to a depth of four), and the
// bodies of CREATE/ALTER PROCEDURE, FUNCTION, TRIGGER, EVENT and PACKAGE
// and of MariaDB's compound statements outside routines (BEGIN NOT
// ATOMIC, IF, CASE, LOOP, WHILE, REPEAT, FOR, labels).
//
// SET ROLE is allowed: it only activates a role already granted to the
// backend account, so it cannot reach beyond what the operator gave that
// account, and the pool clears it (SET ROLE NONE) before a connection
// serves anyone else. SET DEFAULT ROLE changes the account and is refused.
//
// How it reads SQL. The TiDB parser's lexer splits the text into tokens;
// no regular expression is involved. The grammar is not used: it rejects
// valid MariaDB statements (EXECUTE IMMEDIATE, KILL QUERY ID, ...).
// MariaDB's `/*M! ... */` is a plain comment to that lexer, so the guard
// finds such comments in the gaps between tokens, turns each into a
// `/*! ... */` and lexes again. The session's sql_mode decides how
// backslashes and double quotes end strings, and a client can change it,
// so a text that holds a backslash is judged three times: as the default
// mode reads it, with NO_BACKSLASH_ESCAPES, and (when it holds a double
// quote) with ANSI_QUOTES; it is refused if any reading finds something.
//
// What cannot be read is refused: a text the lexer reports an error in
// (an unclosed string, quote or comment) in every one of those readings
// gets 1064, since MariaDB would not run it either; a reading with an
// error is one MariaDB would refuse, so it is not judged. A statement is otherwise judged by its tokens, not
// by a grammar, so MariaDB syntax TiDB does not know passes when none of
// the refused forms is in it. Inside routine and compound bodies, where
// a statement can start after almost any token, the forms are looked for
// at every token, except that SET inside an UPDATE, INSERT, REPLACE or
// LOAD DATA statement assigns columns; so a body that uses, say, a column
// named user in ALTER TABLE t DROP user, or a column named kill, is
// refused: quote the name. Writes to the mysql schema's tables are left
// to the account's privileges, which rbac.CheckAccounts reports.
//
// Refusals are MySQL ERR packets: 1227 (ER_SPECIFIC_ACCESS_DENIED_ERROR)
// for account statements and dynamic SQL, 1095 (ER_KILL_DENIED_ERROR) for
// KILL, 1064 (ER_PARSE_ERROR) for what cannot be read.
//
// The fast path. Most statements cannot be any of these: a text whose
// first word is SELECT, INSERT, UPDATE, DELETE, REPLACE, WITH, SHOW,
// DESCRIBE, EXPLAIN, CALL, DO, COMMIT, ROLLBACK, START, USE, VALUES,
// TABLE, SAVEPOINT or RELEASE, and that has no ';' and nothing that could
// open a comment ('#', '/*', '--') anywhere, is one statement of that
// kind. Checking that is one pass over the bytes, with no allocation
// (BenchmarkGuard in make bench).

// guardDepth bounds how deep PREPARE/EXECUTE IMMEDIATE strings are read.
const guardDepth = 4

// verdict is the guard's decision about one command text. A zero
// verdict forwards it unchanged.
type verdict struct {
	code uint16 // non-zero: refuse with this ERR code and msg
	msg  string
	kill *killStatement // the text is one KILL statement: the relay decides
}

// killStatement is `KILL [HARD|SOFT] [CONNECTION|QUERY] n`.
type killStatement struct {
	modifiers string // "", "HARD ", "SOFT " followed by "", "CONNECTION ", "QUERY "
	id        uint64
}

// guardPolicy is what the role lets the guard allow.
type guardPolicy struct {
	allowDynamicSQL bool
	prepared        bool // the text comes from COM_STMT_PREPARE: KILL is refused
}

// checkStatement judges one COM_QUERY or COM_STMT_PREPARE text.
func checkStatement(q []byte, p guardPolicy) verdict {
	if fastPath(q) {
		return verdict{}
	}
	return slowCheck(string(q), p, 0)
}

// fastWords are the first words of statements that, alone and without
// comments, cannot hold anything the guard refuses.
var fastWords = [...]string{"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "SHOW", "DESCRIBE", "DESC",
	"EXPLAIN", "CALL", "DO", "COMMIT", "ROLLBACK", "START", "USE", "VALUES", "TABLE", "SAVEPOINT", "RELEASE"}

// fastStop marks the bytes that can start a second statement or a comment.
var fastStop = func() (t [256]bool) {
	for _, c := range ";#/-" {
		t[c] = true
	}
	return t
}()

// fastPath reports whether q certainly holds none of the refused forms.
func fastPath(q []byte) bool {
	i := 0
	for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '(') {
		i++
	}
	start := i
	for i < len(q) && (q[i]|0x20 >= 'a' && q[i]|0x20 <= 'z') {
		i++
	}
	word := q[start:i]
	if len(word) == 0 || i < len(q) && !(q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '(' || q[i] == '*' || q[i] == '`' || q[i] == '@' || q[i] == '\'' || q[i] == '"') {
		return false
	}
	known := false
	for _, w := range fastWords {
		if len(w) == len(word) && upperEqual(word, w) {
			known = true
			break
		}
	}
	if !known {
		return false
	}
	for j := i; j < len(q); j++ {
		if c := q[j]; fastStop[c] {
			switch {
			case c == ';' || c == '#':
				return false
			case c == '/' && j+1 < len(q) && q[j+1] == '*':
				return false
			case c == '-' && j+1 < len(q) && q[j+1] == '-':
				return false
			}
		}
	}
	return true
}

// upperEqual compares ASCII letters b to the upper-case w.
func upperEqual(b []byte, w string) bool {
	for k := range b {
		if b[k]&^0x20 != w[k] {
			return false
		}
	}
	return true
}

// lexModes are the sql_mode readings a text is judged in.
func lexModes(sql string) []tidbmysql.SQLMode {
	if !strings.Contains(sql, `\`) {
		return []tidbmysql.SQLMode{0}
	}
	if !strings.Contains(sql, `"`) {
		return []tidbmysql.SQLMode{0, tidbmysql.ModeNoBackslashEscapes}
	}
	return []tidbmysql.SQLMode{0, tidbmysql.ModeNoBackslashEscapes, tidbmysql.ModeANSIQuotes}
}

// slowCheck lexes sql in every mode that could matter and judges the
// tokens of each; the first refusal wins.
func slowCheck(sql string, p guardPolicy, depth int) verdict {
	if depth > guardDepth {
		return refuseAccount("PREPARE or EXECUTE IMMEDIATE nested more than %d deep is not allowed through portcullis", guardDepth)
	}
	var kill *killStatement
	read := false
	for _, mode := range lexModes(sql) {
		text := sql
		if mode == tidbmysql.ModeANSIQuotes {
			// TiDB's lexer still reads backslash escapes in ANSI_QUOTES
			// identifiers; MariaDB does not. A double-quoted name then
			// reads like a backquoted one, which has no escapes.
			text = strings.ReplaceAll(sql, `"`, "`")
			mode = 0
		}
		toks, ok := lexExpanded(text, mode)
		if !ok {
			continue // MariaDB, in that mode, would refuse the text too
		}
		read = true
		v := judge(toks, p, depth)
		if v.code != 0 {
			return v
		}
		if v.kill != nil {
			if kill != nil && *kill != *v.kill {
				return refuseKill("this KILL reads differently under different sql_mode settings: send KILL <thread id> alone")
			}
			kill = v.kill
		}
	}
	if !read {
		return verdict{code: mysql.ER_PARSE_ERROR, msg: "portcullis could not read this statement (an unclosed quote, string or comment?), so it did not send it"}
	}
	return verdict{kill: kill}
}

// lexExpanded lexes text, first turning every MariaDB executable comment
// `/*M!` (with its version digits) into `/*!`, which the lexer reads as
// code.
func lexExpanded(text string, mode tidbmysql.SQLMode) ([]token, bool) {
	for range 8 {
		toks, ok := lexSQL(text, mode)
		if !ok {
			return nil, false
		}
		at := mariaComment(text, toks)
		if at < 0 {
			return toks, true
		}
		n := 4
		for at+n < len(text) && n < 10 && text[at+n] >= '0' && text[at+n] <= '9' {
			n++
		}
		text = text[:at] + "/*!" + strings.Repeat(" ", n-3) + text[at+n:]
	}
	return nil, false // comments nested deeper than any client sends
}

// mariaComment returns where the first `/*M!` comment opener is in the
// gaps between toks (what the lexer skipped: blanks and comments), or -1.
func mariaComment(text string, toks []token) int {
	gap := 0
	for _, t := range toks {
		if at := gapComment(text, gap, min(t.off, len(text))); at >= 0 {
			return at
		}
		gap = max(gap, t.end)
	}
	return -1
}

// gapComment walks text[from:to], which the lexer skipped, and returns
// where a `/*M!` opens a comment there, or -1. Openers inside other
// comments do not count, as neither server nests comments.
func gapComment(text string, from, to int) int {
	for i := from; i < to; {
		switch {
		case strings.HasPrefix(text[i:to], "/*M!"):
			return i
		case strings.HasPrefix(text[i:to], "/*!"): // its body is tokens; skip the opener and version
			i += 3
			for i < to && text[i] >= '0' && text[i] <= '9' {
				i++
			}
		case strings.HasPrefix(text[i:to], "/*"):
			end := strings.Index(text[i+2:to], "*/")
			if end < 0 {
				return -1
			}
			i += 2 + end + 2
		case text[i] == '#' || strings.HasPrefix(text[i:to], "--"):
			end := strings.IndexByte(text[i:to], '\n')
			if end < 0 {
				return -1
			}
			i += end + 1
		default:
			i++
		}
	}
	return -1
}

func refuseAccount(format string, args ...any) verdict {
	return verdict{code: mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, msg: fmt.Sprintf(format, args...)}
}

func refuseKill(msg string) verdict {
	return verdict{code: mysql.ER_KILL_DENIED_ERROR, msg: msg}
}

const accountAdvice = ": account and privilege statements are not allowed through portcullis, which shares or manages this backend account; ask a database administrator"

// judge splits toks into statements at ';' and judges each.
func judge(toks []token, p guardPolicy, depth int) verdict {
	var stmts [][]token
	start := 0
	for i, t := range toks {
		if t.kind == tokSemi || t.kind == tokEnd {
			if i > start {
				stmts = append(stmts, toks[start:i])
			}
			start = i + 1
		}
	}
	var kill *killStatement
	for _, st := range stmts {
		v := judgeStatement(st, p, depth)
		if v.code != 0 {
			return v
		}
		if v.kill != nil {
			if len(stmts) > 1 || depth > 0 || p.prepared {
				return refuseKill("KILL must be sent alone through portcullis (not in a multi-statement query, a prepared statement or dynamic SQL), so that it can check the thread is yours")
			}
			kill = v.kill
		}
	}
	return verdict{kill: kill}
}

// plainStatements start statements that hold no other statement, so only
// their start needs judging. CREATE and ALTER do too, unless they define
// a routine, trigger or event.
var plainStatements = map[string]bool{
	"SELECT": true, "INSERT": true, "UPDATE": true, "DELETE": true, "REPLACE": true, "WITH": true, "SHOW": true,
	"DESCRIBE": true, "DESC": true, "EXPLAIN": true, "ANALYZE": true, "CHECK": true, "CHECKSUM": true, "OPTIMIZE": true,
	"REPAIR": true, "TRUNCATE": true, "USE": true, "HANDLER": true, "LOAD": true, "DROP": true, "RENAME": true,
	"COMMIT": true, "ROLLBACK": true, "START": true, "SAVEPOINT": true, "RELEASE": true, "LOCK": true, "UNLOCK": true,
	"XA": true, "DO": true, "CALL": true, "VALUES": true, "TABLE": true, "FLUSH": true, "CACHE": true, "INSTALL": true,
	"UNINSTALL": true, "BINLOG": true, "PURGE": true, "RESET": true, "CHANGE": true, "STOP": true, "BACKUP": true,
	"SIGNAL": true, "RESIGNAL": true, "GET": true, "HELP": true, "SET": true, "CREATE": true, "ALTER": true,
	"PREPARE": true, "EXECUTE": true, "DEALLOCATE": true, "KILL": true, "GRANT": true, "REVOKE": true, "SHUTDOWN": true,
}

// routineWords mark a CREATE or ALTER that carries a body of statements.
var routineWords = map[string]bool{"PROCEDURE": true, "FUNCTION": true, "TRIGGER": true, "EVENT": true, "PACKAGE": true}

// judgeStatement judges one statement (no ';' inside).
func judgeStatement(st []token, p guardPolicy, depth int) verdict {
	i := 0
	for i < len(st) && st[i].kind == tokOther && st[i].text == "(" {
		i++
	}
	if i == len(st) {
		return verdict{}
	}
	first := strings.ToUpper(st[i].text)
	if st[i].kind != tokWord {
		first = ""
	}
	if first == "KILL" {
		return killAt(st, i)
	}
	if v := formAt(st, i, p, depth, false); v.code != 0 || v.kill != nil {
		return v
	}
	body := !plainStatements[first]
	if first == "CREATE" || first == "ALTER" {
		for _, t := range st[i:] {
			if t.kind == tokWord && routineWords[strings.ToUpper(t.text)] {
				body = true
				break
			}
		}
	}
	if first == "SET" && i+1 < len(st) && st[i+1].is("STATEMENT") {
		body = true // SET STATEMENT var=value FOR <statement>
	}
	if first == "BEGIN" && (i+1 == len(st) || st[i+1].is("WORK")) {
		body = false // a transaction, not a compound statement
	}
	if !body {
		return verdict{}
	}
	return judgeBody(st[i:], p, depth)
}

// judgeBody looks for the refused forms at every token of a routine or
// compound body.
func judgeBody(st []token, p guardPolicy, depth int) verdict {
	dml := false // inside UPDATE/INSERT/REPLACE/LOAD, where SET assigns columns
	for i, t := range st {
		if t.kind == tokOther && t.text == ":" { // a label ends the statement before it
			dml = false
			continue
		}
		if t.kind != tokWord {
			continue
		}
		w := strings.ToUpper(t.text)
		prev := ""
		if i > 0 && st[i-1].kind == tokWord {
			prev = strings.ToUpper(st[i-1].text)
		}
		switch w {
		case "BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT", "ROW":
			dml = false
		case "UPDATE", "INSERT", "REPLACE", "LOAD":
			// not a trigger's BEFORE UPDATE, nor CREATE OR REPLACE
			dml = prev != "BEFORE" && prev != "AFTER" && prev != "OR"
		case "KILL":
			return refuseKill("KILL inside a routine or compound statement is not allowed through portcullis: send KILL <thread id> alone")
		}
		if w == "SET" && dml {
			continue
		}
		if v := formAt(st, i, p, depth, true); v.code != 0 {
			return v
		}
	}
	return verdict{}
}

// formAt judges the statement that would start at st[i].
func formAt(st []token, i int, p guardPolicy, depth int, inBody bool) verdict {
	word := func(k int) string {
		if i+k < len(st) && st[i+k].kind == tokWord {
			return strings.ToUpper(st[i+k].text)
		}
		return ""
	}
	refuse := func(what string) verdict { return refuseAccount("%s%s", what, accountAdvice) }
	switch word(0) {
	case "SET":
		// Every item of the list, not only the first: MariaDB runs
		// SET @a = 1, PASSWORD FOR x = ... as two assignments.
		nest := 0
		for k := i + 1; k < len(st) && st[k].kind != tokSemi; k++ {
			t, prev := st[k], st[k-1]
			if t.kind == tokOther && (t.text == "(" || t.text == ")") {
				nest += map[string]int{"(": 1, ")": -1}[t.text]
				continue
			}
			item := k == i+1 || prev.kind == tokOther && prev.text == "," ||
				prev.is("GLOBAL") || prev.is("SESSION") || prev.is("LOCAL")
			switch {
			case nest != 0 || !item:
			case t.is("PASSWORD"):
				return refuse("SET PASSWORD")
			case t.is("DEFAULT") && k+1 < len(st) && st[k+1].is("ROLE"):
				return refuse("SET DEFAULT ROLE")
			}
		}
	case "GRANT", "REVOKE":
		return refuse(word(0))
	case "CREATE":
		k := 1
		if word(1) == "OR" && word(2) == "REPLACE" {
			k = 3
		}
		if w := word(k); w == "USER" || w == "ROLE" {
			return refuse("CREATE " + w)
		}
	case "ALTER", "RENAME":
		if word(1) == "USER" {
			return refuse(word(0) + " USER")
		}
	case "DROP":
		if w := word(1); w == "USER" || w == "ROLE" {
			return refuse("DROP " + w)
		}
	case "PREPARE":
		for k := i + 1; k < len(st); k++ {
			if st[k].is("FROM") {
				return dynamic(st[k+1:], "PREPARE ... FROM", p, depth)
			}
		}
	case "EXECUTE":
		if word(1) == "IMMEDIATE" {
			return dynamic(st[i+2:], "EXECUTE IMMEDIATE", p, depth)
		}
	}
	return verdict{}
}

// dynamic judges the SQL of PREPARE ... FROM and EXECUTE IMMEDIATE: string
// literals (adjacent ones join) are read again; anything else (a variable,
// an expression) cannot be read and is refused unless the role allows it.
func dynamic(rest []token, what string, p guardPolicy, depth int) verdict {
	var sql strings.Builder
	k := 0
	for k < len(rest) && rest[k].kind == tokString {
		sql.WriteString(rest[k].text)
		k++
	}
	literal := k > 0 && (k == len(rest) || rest[k].is("USING"))
	if !literal {
		if p.allowDynamicSQL {
			return verdict{}
		}
		return refuseAccount("%s with SQL from a variable or an expression cannot be checked by portcullis, so this role does not allow it (roles.<role>.allow_dynamic_sql): use a string literal", what)
	}
	v := slowCheck(sql.String(), p, depth+1)
	if v.code != 0 {
		v.msg += " (inside " + what + ")"
	}
	return v
}

// killAt reads `KILL [HARD|SOFT] [CONNECTION|QUERY] <integer>` starting
// at st[i]; every other form is refused.
func killAt(st []token, i int) verdict {
	k := killStatement{}
	j := i + 1
	if j < len(st) && (st[j].is("HARD") || st[j].is("SOFT")) {
		k.modifiers += strings.ToUpper(st[j].text) + " "
		j++
	}
	switch {
	case j < len(st) && st[j].is("USER"):
		return refuseKill("KILL USER is not allowed through portcullis: it would end other people's sessions on a shared account; KILL your own sessions by id")
	case j < len(st) && st[j].is("CONNECTION"):
		k.modifiers += "CONNECTION "
		j++
	case j < len(st) && st[j].is("QUERY"):
		k.modifiers += "QUERY "
		j++
		if j < len(st) && st[j].is("ID") {
			return refuseKill("KILL QUERY ID is not supported through portcullis: use KILL QUERY <thread id> (SELECT CONNECTION_ID() shows it)")
		}
	}
	if j != len(st)-1 || st[j].kind != tokNumber {
		return refuseKill("portcullis accepts KILL only with a plain thread id: KILL [CONNECTION|QUERY] <id>")
	}
	var n uint64
	for _, c := range st[j].text {
		if c < '0' || c > '9' || n > 1<<40 {
			return refuseKill("portcullis accepts KILL only with a plain thread id: KILL [CONNECTION|QUERY] <id>")
		}
		n = n*10 + uint64(c-'0')
	}
	k.id = n
	return verdict{kill: &k}
}
