package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// SessionRecords is the store's cluster-wide session registry: where a
// process gets its blocks of connection ids and records its sessions and
// heartbeats. *store.DB implements it.
type SessionRecords interface {
	AllocateSessionBlock(ctx context.Context) (int64, error)
	HeartbeatNode(ctx context.Context, instance int64, node string) error
	RemoveNode(ctx context.Context, instance int64) error
	PutProxySessions(ctx context.Context, sessions ...store.ProxySession) error
	RemoveProxySessions(ctx context.Context, ids ...int64) error
	SweepNodes(ctx context.Context, before time.Time) (int64, error)
}

var _ SessionRecords = (*store.DB)(nil)

// Connection ids: connIDBase + block*idBlockSize + n, n in 1..idBlockSize-1,
// where each block comes from the store and is never handed to another
// process. So an id names one session in the whole cluster (until the
// blocks wrap, after maxIDBlocks*65535 connections), and it still fits the
// handshake's uint32 connection id that a client passes to KILL.
const (
	idBlockSize = 1 << 16
	maxIDBlocks = (1<<32 - connIDBase) / idBlockSize
)

// sessionID returns the next connection id. With a registry it takes ids
// from the process's current block, and a new block from the store when
// that one is used up; without one, a per-process counter.
func (s *Server) sessionID(ctx context.Context) (uint32, error) {
	if s.opt.Records == nil {
		return connIDBase + s.nextID.Add(1), nil
	}
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.block == 0 || s.inBlock >= idBlockSize-1 {
		b, err := s.opt.Records.AllocateSessionBlock(ctx)
		if err != nil {
			return 0, fmt.Errorf("allocate connection ids: %w", err)
		}
		if s.block == 0 {
			s.instance.Store(b)
		}
		s.block, s.inBlock = b, 0
	}
	s.inBlock++
	return connIDBase + uint32((s.block-1)%maxIDBlocks)*idBlockSize + s.inBlock, nil
}

// Instance is the registry's number of this process (its first id
// block); 0 until it has one.
func (s *Server) Instance() int64 { return s.instance.Load() }

// SyncRegistry keeps this process's entry of the cluster-wide registry
// until ctx ends: every interval it heartbeats, records the sessions that
// started and removes those that ended since the last beat, and sweeps
// the processes silent for longer than stale (a node killed without a
// chance to clean up). LeaveRegistry removes this process's entry.
func (s *Server) SyncRegistry(ctx context.Context, interval, stale time.Duration) {
	if s.opt.Records == nil {
		return
	}
	rec := s.opt.Records
	for s.Instance() == 0 {
		if _, err := s.sessionID(ctx); err != nil { // takes the first block: the instance number
			s.log.Warn("session registry unavailable; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	instance := s.Instance()
	written := map[uint32]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.syncMu.Lock()
		if s.left {
			s.syncMu.Unlock()
			return
		}
		if err := s.syncOnce(ctx, rec, instance, written, stale); err != nil && ctx.Err() == nil {
			s.log.Warn("session registry: sync", "err", err)
		}
		s.syncMu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// LeaveRegistry removes this process and its sessions from the
// cluster-wide registry (a clean shutdown, before the store closes); the
// registry is not written again.
func (s *Server) LeaveRegistry(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.left = true
	if s.opt.Records == nil || s.Instance() == 0 {
		return nil
	}
	return s.opt.Records.RemoveNode(ctx, s.Instance())
}

func (s *Server) syncOnce(ctx context.Context, rec SessionRecords, instance int64, written map[uint32]bool, stale time.Duration) error {
	if err := rec.HeartbeatNode(ctx, instance, s.opt.Node); err != nil {
		return err
	}
	live := map[uint32]bool{}
	var add []store.ProxySession
	for _, p := range s.Sessions.List() {
		live[p.ID] = true
		if !written[p.ID] {
			add = append(add, store.ProxySession{ID: int64(p.ID), Instance: instance, Node: s.opt.Node, Identity: p.Identity,
				Issuer: p.Issuer, Role: p.Role, BackendUser: p.BackendUser, ClientAddr: p.ClientAddr, LoginID: p.LoginID, Started: p.Started})
		}
	}
	var gone []int64
	for id := range written {
		if !live[id] {
			gone = append(gone, int64(id))
		}
	}
	if err := rec.PutProxySessions(ctx, add...); err != nil {
		return err
	}
	for _, p := range add {
		written[uint32(p.ID)] = true
	}
	if err := rec.RemoveProxySessions(ctx, gone...); err != nil {
		return err
	}
	for _, id := range gone {
		delete(written, uint32(id))
	}
	if n, err := rec.SweepNodes(ctx, time.Now().Add(-stale)); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("session registry: removed silent nodes", "nodes", n)
	}
	return nil
}

// killEvent ends the session a session.kill event names, when this
// process holds it. The event names the session's id (unique across the
// cluster) and, when the directory found it in the registry, the process
// holding it: a process that is not the one named does nothing.
func (s *Server) killEvent(e store.Event, instance int64) {
	id, err := strconv.ParseUint(e.Subject, 10, 32)
	if err != nil {
		return
	}
	if instance != 0 && s.Instance() != 0 && instance != s.Instance() {
		return
	}
	s.Sessions.Kill(uint32(id), "ended by an administrator")
}

// loginEnded ends the sessions a login.ended event names: those opened
// with the tokens of one login, or (no login id) every session of the
// user.
func (s *Server) loginEnded(e store.Event) {
	var d struct {
		LoginID string `json:"login_id"`
		Reason  string `json:"reason"`
	}
	json.Unmarshal(e.Data, &d)
	reason := "the login of " + e.Subject + " was ended"
	if d.Reason != "" {
		reason += " (" + d.Reason + ")"
	}
	n := 0
	for _, sess := range s.Sessions.List() {
		if !strings.EqualFold(sess.Identity, e.Subject) || (d.LoginID != "" && sess.LoginID != d.LoginID) {
			continue
		}
		sess.kill(reason)
		n++
	}
	if n > 0 {
		s.log.Info("ended sessions: login ended", "user", e.Subject, "login_id", d.LoginID, "sessions", n)
	}
}
