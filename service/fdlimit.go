package service

import (
	"fmt"
	"log/slog"

	"github.com/portcullisdb/portcullis/config"
)

// fdReserve is the file descriptors counted for everything but MySQL
// clients: the portal's HTTP connections, the store, the audit and log
// files, the listeners, the backend probe and the runtime's own.
const fdReserve = 128

// fdNeed is how many file descriptors cfg can make the process hold: two
// per session (client and backend), one per connection still in the
// handshake, the pooled idle backend connections, and fdReserve.
func fdNeed(cfg *config.Config) (need, pooled int) {
	for _, r := range cfg.Roles {
		if r.Plan == config.PlanStatic && r.Pool.MaxIdle > 0 { // -1 turns pooling off
			pooled += r.Pool.MaxIdle
		}
	}
	return 2*cfg.Proxy.MaxConnections + cfg.Proxy.MaxHandshakes + pooled + fdReserve, pooled
}

// fitFDLimit raises the soft open-file limit to the hard one and refuses a
// configuration that does not fit in it, naming the numbers and the fix:
// a proxy that runs out of descriptors can only refuse clients.
func fitFDLimit(cfg *config.Config, log *slog.Logger) error {
	limit, err := raiseNoFile()
	if err != nil {
		log.Warn("could not read or raise the open-file limit", "err", err)
		return nil
	}
	if limit == 0 { // not known on this platform
		return nil
	}
	need, pooled := fdNeed(cfg)
	if uint64(need) <= limit {
		log.Debug("open-file limit", "limit", limit, "needed", need)
		return nil
	}
	fit := (int(limit) - cfg.Proxy.MaxHandshakes - pooled - fdReserve) / 2
	fix := fmt.Sprintf("lower proxy.max_connections to %d", fit)
	if fit < 1 {
		fix = "lower proxy.max_handshakes, the pools' max_idle and proxy.max_connections"
	}
	return fmt.Errorf("proxy.max_connections: %d sessions do not fit the open-file limit of %d: they need %d descriptors "+
		"(2 per session = %d, %d for connections still in the handshake (proxy.max_handshakes), %d for pooled backend connections, "+
		"%d for the portal, the store and logs): raise the limit to at least %d (systemd LimitNOFILE=, docker --ulimit nofile=, ulimit -n) or %s",
		cfg.Proxy.MaxConnections, limit, need, 2*cfg.Proxy.MaxConnections, cfg.Proxy.MaxHandshakes, pooled, fdReserve, need, fix)
}
