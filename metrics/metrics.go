// Package metrics defines portcullis' Prometheus metrics in one registry,
// so every name and label is in one place. Labels take values from small
// fixed sets (outcome, reason class, platform), never from user input,
// so cardinality stays bounded.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every portcullis metric plus the Go and process ones.
var Registry = prometheus.NewRegistry()

var (
	// Connections counts client connection attempts by outcome (granted,
	// denied, error) and reason class.
	Connections = counterVec("portcullis_connections_total", "Client connection attempts by outcome and reason class.", "outcome", "reason")
	// SessionsOpen is the number of relaying sessions.
	SessionsOpen = gauge("portcullis_sessions_open", "Sessions relaying between a client and the backend.")
	// ClientsOpen is the number of client connections, handshaking ones included.
	ClientsOpen = gauge("portcullis_client_connections_open", "Client connections open, handshaking ones included.")
	// AuthSeconds times token verification and role resolution.
	AuthSeconds = histogram("portcullis_auth_seconds", "Time to verify a token and resolve the role.")
	// BackendDialSeconds times opening and logging in to a backend connection.
	BackendDialSeconds = histogram("portcullis_backend_dial_seconds", "Time to connect and log in to the backend.")
	// BytesRelayed counts relayed bytes by direction (to_backend, to_client).
	BytesRelayed = counterVec("portcullis_bytes_relayed_total", "Bytes relayed, by direction.", "direction")
	// PoolIdle is the number of idle pooled backend connections per backend user.
	PoolIdle = gaugeVec("portcullis_pool_idle_connections", "Idle pooled backend connections, by backend user.", "backend_user")
	// JWKSAge is the time since an issuer's keys were last refreshed.
	JWKSAge = gaugeVec("portcullis_jwks_refresh_age_seconds", "Seconds since an issuer's JWKS was last fetched successfully.", "issuer")
	// JWKSFailures counts failed JWKS fetches per issuer.
	JWKSFailures = gaugeVec("portcullis_jwks_refresh_failures", "Failed JWKS fetches since start, by issuer.", "issuer")
	// SCIMRequests counts SCIM requests by method and status code class.
	SCIMRequests = counterVec("portcullis_scim_requests_total", "SCIM requests by method and result.", "method", "result")
	// Exchanges counts token exchanges by platform and outcome.
	Exchanges = counterVec("portcullis_token_exchanges_total", "Token exchanges by platform and outcome.", "platform", "outcome")
	// EventLag times from an offboarding event's creation to acting on it.
	EventLag = histogram("portcullis_event_apply_seconds", "Delay from a directory event to this node acting on it.")
)

func init() {
	Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves /metrics.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{})
}

// Since observes the seconds since start on h.
func Since(h prometheus.Observer, start time.Time) { h.Observe(time.Since(start).Seconds()) }

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	Registry.MustRegister(c)
	return c
}

func gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	Registry.MustRegister(g)
	return g
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	Registry.MustRegister(g)
	return g
}

func histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	Registry.MustRegister(h)
	return h
}

// Floods, limits and outages.
var (
	// AcceptErrors counts failed accepts on the MySQL listener by reason
	// (fd_limit, memory, other); each one is retried after a backoff.
	AcceptErrors = counterVec("portcullis_accept_errors_total", "Failed accepts on the MySQL listener, by reason; each is retried after a backoff.", "reason")
	// HandshakesOpen is the number of client connections not yet authenticated.
	HandshakesOpen = gauge("portcullis_handshakes_open", "Client connections still in the handshake (not yet authenticated).")
	// EventPollFailures counts failed polls of the store's event log.
	EventPollFailures = counter("portcullis_event_poll_failures_total", "Failed polls of the store's event log.")
)

func counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	Registry.MustRegister(c)
	return c
}
