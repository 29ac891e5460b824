package proxy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/limit"
	"github.com/portcullisdb/portcullis/metrics"
	"github.com/portcullisdb/portcullis/store"
)

// EventSource is the store's event log, which every node polls so that an
// offboarding at the IdP ends sessions everywhere.
type EventSource interface {
	LatestEventID(ctx context.Context) (int64, error)
	EventsSince(ctx context.Context, afterID int64, limit int) ([]store.Event, error)
}

// WatchEvents polls src every interval until ctx ends and acts on each
// event: a deactivated or deleted user's sessions end; a user whose roles
// changed keeps only the sessions whose role they still hold; a
// session.kill event ends that session. Polling (not notification) keeps
// the store engines interchangeable; at 200ms the worst case is well
// inside the one second offboarding must take.
func (s *Server) WatchEvents(ctx context.Context, src EventSource, interval time.Duration) {
	// A store that is down fails every poll: log once, then a summary.
	down := limit.NewOutage(s.log, "poll event log", "store unreachable", 30*time.Second)
	last, err := src.LatestEventID(ctx)
	for err != nil && ctx.Err() == nil { // start only once we know where "now" is
		metrics.EventPollFailures.Inc()
		down.Failed(err)
		time.Sleep(time.Second)
		last, err = src.LatestEventID(ctx)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		events, err := src.EventsSince(ctx, last, 1000)
		if err != nil {
			metrics.EventPollFailures.Inc()
			down.Failed(err)
			if s.opt.DirectoryChanged != nil {
				// Unseen events may be waiting: cached answers are no
				// longer known to be current.
				s.opt.DirectoryChanged()
			}
			continue
		}
		down.OK()
		if len(events) > 0 && s.opt.DirectoryChanged != nil {
			s.opt.DirectoryChanged()
		}
		for _, e := range events {
			last = e.ID
			s.apply(ctx, e)
			metrics.EventLag.Observe(time.Since(e.Created).Seconds())
		}
	}
}

func (s *Server) apply(ctx context.Context, e store.Event) {
	switch e.Kind {
	case store.EventUserDeactivated, store.EventUserDeleted:
		reason := e.Subject + " was deactivated in the directory"
		if e.Kind == store.EventUserDeleted {
			reason = e.Subject + " was deleted from the directory"
		}
		if n := s.Sessions.KillIdentity(e.Subject, reason); n > 0 {
			s.log.Info("ended sessions", "user", e.Subject, "sessions", n, "reason", reason)
		}
		go s.deprovision(ctx, e.Subject, nil) // database round trips: off the event loop
	case store.EventUserRolesChanged:
		s.recheck(ctx, e.Subject)
		// The roles the directory gives the user now (a token issued now:
		// this asks about the user, not about a token). When that cannot
		// be read, nothing is locked: live sessions were rechecked above,
		// and a deactivation has its own event.
		if r, ok := s.live.Load().Roles.(interface {
			Roles(ctx context.Context, id auth.Identity) ([]string, error)
		}); ok {
			if keep, err := r.Roles(ctx, auth.Identity{Username: e.Subject, IssuedAt: time.Now()}); err == nil {
				go s.deprovision(ctx, e.Subject, keep)
			}
		}
	case store.EventLoginEnded:
		s.loginEnded(e)
	case store.EventSessionKill:
		var d struct {
			Instance int64 `json:"instance"`
		}
		json.Unmarshal(e.Data, &d)
		s.killEvent(e, d.Instance)
	}
}

// deprovision locks identity's per-person backend accounts of the
// per_user roles not in keep, ends their connections (direct ones too)
// and closes their pooled ones.
func (s *Server) deprovision(ctx context.Context, identity string, keep []string) {
	if s.opt.PersonalAccounts == nil {
		return
	}
	for _, user := range s.opt.PersonalAccounts.DeprovisionPersonal(ctx, identity, keep) {
		s.pool.closeUser(user)
		s.log.Info("locked a personal backend account", "user", identity, "backend_user", user)
	}
}

// recheck ends the sessions of identity whose role it no longer holds.
func (s *Server) recheck(ctx context.Context, identity string) {
	key := identityKey(identity)
	for _, sess := range s.Sessions.List() {
		if identityKey(sess.Identity) != key {
			continue
		}
		if _, err := s.live.Load().Roles.Resolve(ctx, sess.who, sess.Role); err != nil {
			s.log.Info("ended session: role no longer held", "conn_id", sess.ID, "user", identity, "role", sess.Role, "reason", err)
			sess.kill("role " + sess.Role + " is no longer held: " + err.Error())
		}
	}
}
