package directory_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// storeWrites are the store methods that change who may do what.
var storeWrites = map[string]bool{
	"CreateUser": true, "UpdateUser": true, "DeleteUser": true,
	"CreateGroup": true, "UpdateGroup": true, "DeleteGroup": true, "AddMembers": true, "RemoveMembers": true,
	"PutTeam": true, "DeleteTeam": true, "AppendEvent": true, "RevokeUserRefreshTokens": true,
	"PutTombstone": true, "DeleteTombstone": true, "PutLocalCredentials": true,
}

// storeReceiver is how code names a store.Store (st, s.store, a.Store,
// lr.opt.Store, ...); the directory is named dir or d.
var storeReceiver = regexp.MustCompile(`(?i)(^|\.)(st|store)$`)

// TestOneWriter keeps the directory the one writer of access-changing
// state: no non-test code outside directory and store (and the cache's
// invalidating wrapper) calls a store write method. It reads the source,
// so a new front-end that writes the store directly fails here.
func TestOneWriter(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	allowed := func(rel string) bool {
		return strings.HasPrefix(rel, "directory/") || strings.HasPrefix(rel, "store/") || rel == "rbac/dircache.go"
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || allowed(rel) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !storeWrites[sel.Sel.Name] {
				return true
			}
			if recv := exprString(sel.X); storeReceiver.MatchString(recv) {
				t.Errorf("%s: %s.%s writes the store directly: go through package directory, which commits the change with its events", fset.Position(call.Pos()), recv, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exprString renders a selector chain (a.b.c) for matching.
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return ""
}
