package proxy

import (
	"context"
	"strconv"
	"time"

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
	case store.EventUserRolesChanged:
		s.recheck(ctx, e.Subject)
	case store.EventSessionKill:
		if id, err := strconv.ParseUint(e.Subject, 10, 32); err == nil {
			s.Sessions.Kill(uint32(id), "ended by an administrator")
		}
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
