// Package metrics holds Gatehouse's Prometheus metrics: what the token
// endpoint answered and how long the identity provider took, next to the
// Go runtime's and the process's. Labels take values from small fixed
// sets (grant types, OAuth error codes, strategies, error kinds), never
// from a client id, a user or a realm.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the set of metrics one server exports. Its methods do
// nothing on a nil Registry, so that metrics can be left out.
type Registry struct {
	reg             *prometheus.Registry
	tokens          *prometheus.CounterVec
	tokenSeconds    *prometheus.HistogramVec
	upstream        *prometheus.CounterVec
	upstreamSeconds *prometheus.HistogramVec
}

// buckets reach from a cached token grant (~1 ms) to an identity
// provider's timeout.
var buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New returns a Registry with the Go and process collectors.
func New() *Registry {
	m := &Registry{
		reg: prometheus.NewRegistry(),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_token_requests_total",
			Help: "POST /oauth/token requests by grant type and outcome: ok, or the OAuth error code answered.",
		}, []string{"grant", "outcome"}),
		tokenSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_token_request_duration_seconds",
			Help:    "Time to answer POST /oauth/token, by grant type.",
			Buckets: buckets,
		}, []string{"grant"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_logins_total",
			Help: "Password logins sent to an identity provider, by strategy and outcome: ok, or the kind of failure.",
		}, []string{"strategy", "outcome"}),
		upstreamSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_upstream_login_duration_seconds",
			Help:    "Time an identity provider took over a password login, token call and checks included, by strategy.",
			Buckets: buckets,
		}, []string{"strategy"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.tokens, m.tokenSeconds, m.upstream, m.upstreamSeconds)
	return m
}

// ObserveToken counts one token request.
func (m *Registry) ObserveToken(grant, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(grant, outcome).Inc()
	m.tokenSeconds.WithLabelValues(grant).Observe(d.Seconds())
}

// ObserveUpstream counts one password login at an identity provider.
func (m *Registry) ObserveUpstream(strategy, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(strategy, outcome).Inc()
	m.upstreamSeconds.WithLabelValues(strategy).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
