package service

import (
	"context"
	"time"

	"github.com/portcullisdb/portcullis/portal"
)

// The cluster-wide session registry's timing: each node heartbeats (and
// records its sessions' starts and ends) every RegistryHeartbeat; a node
// silent for RegistryStale (killed, or cut off from the store) drops out
// of `sessions list` and its rows are swept.
const (
	RegistryHeartbeat = time.Second
	RegistryStale     = 5 * time.Second
)

// clusterSessions adds to local (this node's sessions) those the store's
// registry holds for every other node still heartbeating. When the store
// does not answer, the list is this node's only, and the log says so.
func (s *Service) clusterSessions(local []portal.SessionInfo) []portal.SessionInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	list, err := s.Store.ListProxySessions(ctx, time.Now().Add(-RegistryStale))
	if err != nil {
		s.log.Warn("session registry unavailable: listing this node's sessions only", "err", err)
		return local
	}
	self := s.Proxy.Instance()
	for _, p := range list {
		if p.Instance == self {
			continue // this node's own, listed live above
		}
		local = append(local, portal.SessionInfo{ID: uint32(p.ID), Identity: p.Identity, Issuer: p.Issuer, Role: p.Role,
			BackendUser: p.BackendUser, ClientAddr: p.ClientAddr, Started: p.Started, Node: p.Node})
	}
	return local
}
