package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// change is a Change with the reason recorded in its event.
type change struct {
	Change
	reason string
}

// eventAttempts and eventBackoff bound the retries of one AppendEvent.
const (
	eventAttempts = 3
	eventBackoff  = 100 * time.Millisecond
)

// emit appends the event of each change, then calls OnChange; for a
// deactivation it also revokes the user's refresh tokens. It runs after
// the store write succeeded and finishes even if the client goes away. An
// event that cannot be appended fails the request with a 500 (the write
// stays), so the IdP retries.
func (s *Server) emit(ctx context.Context, changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var failed []error
	for _, c := range changes {
		data, err := json.Marshal(map[string]string{"user_id": c.UserID, "connection": s.conn, "reason": c.reason})
		if err != nil {
			return err
		}
		ev := store.Event{Kind: c.Kind, Subject: c.UserName, Data: data}
		for attempt := 1; ; attempt++ {
			_, err = s.store.AppendEvent(ctx, ev)
			if err == nil || attempt == eventAttempts {
				break
			}
			time.Sleep(time.Duration(attempt) * eventBackoff)
		}
		if err != nil {
			s.log.Error("scim: append event", "connection", s.conn, "kind", c.Kind, "user", c.UserName, "err", err)
			failed = append(failed, fmt.Errorf("append %s event for %q: %w", c.Kind, c.UserName, err))
		} else {
			s.log.Info("scim: "+c.Kind, "connection", s.conn, "user", c.UserName, "user_id", c.UserID, "reason", c.reason)
		}
		if c.Kind == store.EventUserDeactivated {
			if _, err := s.store.RevokeUserRefreshTokens(ctx, c.UserID, time.Now()); err != nil {
				s.log.Error("scim: revoke refresh tokens", "connection", s.conn, "user", c.UserName, "err", err)
				failed = append(failed, fmt.Errorf("revoke refresh tokens of %q: %w", c.UserName, err))
			}
		}
		s.callOnChange(ctx, c.Change)
	}
	if len(failed) > 0 {
		s.log.Error("scim: change saved but not fully recorded", "connection", s.conn, "err", errors.Join(failed...))
		return errorf(http.StatusInternalServerError, "",
			"the change is saved, but recording it for the proxy nodes failed: retry the request")
	}
	return nil
}

// callOnChange runs the hook; a panic there is logged, not fatal to the
// remaining changes.
func (s *Server) callOnChange(ctx context.Context, c Change) {
	if s.onChange == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("scim: OnChange panicked", "connection", s.conn, "kind", c.Kind, "user", c.UserName, "panic", v)
		}
	}()
	s.onChange(ctx, c)
}
