package service

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullisdb/portcullis/metrics"
)

// ready lists what keeps this node from serving: the backend, the store,
// the signing key and the issuers' key sets.
func (s *Service) ready(ctx context.Context) []string {
	v := s.verifier.Load()
	var problems []string
	if s.draining.Load() {
		problems = append(problems, "shutting down: draining sessions")
	}
	if err := s.Proxy.ProbeBackend(ctx); err != nil {
		problems = append(problems, "backend: "+err.Error())
	}
	if err := s.Store.Ping(ctx); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if s.Issuer.SigningKID() == "" {
		problems = append(problems, "issuer: no signing key loaded")
	}
	for _, ks := range v.KeySets() {
		switch {
		case ks.LastRefresh.IsZero() && ks.Problem == "":
			problems = append(problems, fmt.Sprintf("issuer %s: keys not fetched yet", ks.Issuer))
		case ks.LastRefresh.IsZero():
			problems = append(problems, fmt.Sprintf("issuer %s: keys never fetched (%s); retrying", ks.Issuer, ks.Problem))
		}
	}
	return problems
}

// watchKeySets publishes the age and failures of each issuer's JWKS.
func (s *Service) watchKeySets(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, ks := range s.verifier.Load().KeySets() {
			if !ks.LastRefresh.IsZero() {
				metrics.JWKSAge.WithLabelValues(ks.Issuer).Set(time.Since(ks.LastRefresh).Seconds())
			}
			metrics.JWKSFailures.WithLabelValues(ks.Issuer).Set(float64(ks.Failures))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
