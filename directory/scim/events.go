package scim

import (
	"context"

	"github.com/portcullisdb/portcullis/directory"
)

// changed calls OnChange for each change the directory committed (with
// its event, in the same transaction as the write).
func (s *Server) changed(ctx context.Context, changes []directory.Change) {
	for _, c := range changes {
		s.callOnChange(ctx, Change{Kind: c.Kind, UserName: c.UserName, UserID: c.UserID})
	}
}

// callOnChange runs the hook; a panic there is logged, not fatal to the
// remaining changes.
func (s *Server) callOnChange(ctx context.Context, c Change) {
	if s.onChange == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("scim: OnChange panicked", "connection", connOf(ctx), "kind", c.Kind, "user", c.UserName, "panic", v)
		}
	}()
	s.onChange(ctx, c)
}
