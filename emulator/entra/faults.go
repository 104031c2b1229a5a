package entra

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

// Endpoint names, used as keys of faults and request counters.
const (
	epToken     = "token"
	epAuthorize = "authorize"
	epMetadata  = "metadata"
	epKeys      = "keys"
	epUserRealm = "userrealm"
	epGraph     = "graph"
	epAADGraph  = "aadgraph"
)

var endpoints = []string{epToken, epAuthorize, epMetadata, epKeys, epUserRealm, epGraph, epAADGraph}

// Endpoints returns the endpoint names faults and counters are keyed by.
func Endpoints() []string { return slices.Clone(endpoints) }

func knownEndpoint(name string) bool { return slices.Contains(endpoints, name) }

// Duration is a time.Duration written as "250ms" in YAML and JSON.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("duration %q: %w", n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Fault is injected into every request of one endpoint. Effects combine:
// the delay happens first, then the request is dropped, answered with
// Status, or answered normally with a slow body.
type Fault struct {
	// Delay is a fixed delay; Jitter adds a random delay in [0, Jitter).
	Delay  Duration `yaml:"delay" json:"delay,omitempty"`
	Jitter Duration `yaml:"jitter" json:"jitter,omitempty"`
	// Status (429 or 5xx) replaces the answer with an error in the
	// endpoint's own error shape; RetryAfter sets Retry-After in seconds,
	// which may have a fraction as Graph's do ("Retry-After: 2.128" in
	// Graph's throttling.md sample).
	Status     int     `yaml:"status" json:"status,omitempty"`
	RetryAfter float64 `yaml:"retryAfter" json:"retryAfter,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `yaml:"drop" json:"drop,omitempty"`
	// SlowBody spreads writing the body over this duration.
	SlowBody Duration `yaml:"slowBody" json:"slowBody,omitempty"`
	// Probability in (0,1] applies the fault to that share of requests;
	// 0 means every request.
	Probability float64 `yaml:"probability" json:"probability,omitempty"`
	// Times limits the fault to the next N requests; 0 means until cleared.
	Times int `yaml:"times" json:"times,omitempty"`
}

type faultTable struct {
	mu sync.Mutex
	m  map[string]*Fault
}

func (ft *faultTable) set(name string, f Fault) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.m == nil {
		ft.m = map[string]*Fault{}
	}
	ft.m[name] = &f
}

func (ft *faultTable) clear(name string) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if name == "" {
		ft.m = nil
		return
	}
	delete(ft.m, name)
}

func (ft *faultTable) snapshot() map[string]Fault {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := make(map[string]Fault, len(ft.m))
	for k, v := range ft.m {
		out[k] = *v
	}
	return out
}

// take returns the fault to apply to one request, consuming one of its
// Times.
func (ft *faultTable) take(name string) (Fault, bool) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	f := ft.m[name]
	if f == nil {
		return Fault{}, false
	}
	if f.Probability > 0 && rand.Float64() >= f.Probability {
		return Fault{}, false
	}
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(ft.m, name)
		}
	}
	return *f, true
}

type counterSet struct{ m sync.Map }

func (c *counterSet) add(name string) {
	v, ok := c.m.Load(name)
	if !ok {
		v, _ = c.m.LoadOrStore(name, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (c *counterSet) get(name string) int64 {
	if v, ok := c.m.Load(name); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (c *counterSet) snapshot() map[string]int64 {
	out := map[string]int64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// SetFault injects a fault into an endpoint (one of Endpoints).
func (s *Server) SetFault(endpoint string, f Fault) error {
	if !knownEndpoint(endpoint) {
		return fmt.Errorf("entra: unknown endpoint %q", endpoint)
	}
	s.faults.set(endpoint, f)
	return nil
}

// ClearFault removes an endpoint's fault; ClearFaults removes all.
func (s *Server) ClearFault(endpoint string) { s.faults.clear(endpoint) }

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.faults.clear("") }

// Count returns a request counter. Counters are named after the endpoint
// ("token", "graph", ...), the grant ("token:password", faulted requests
// included), each error answered ("error:AADSTS50126",
// "error:graph:InvalidAuthenticationToken") and each injected fault
// ("fault:status", "fault:drop").
func (s *Server) Count(name string) int64 { return s.counters.get(name) }

// Counters returns all request counters.
func (s *Server) Counters() map[string]int64 { return s.counters.snapshot() }

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() { s.counters.m.Clear() }

// instrument counts requests and applies latency and faults before the
// endpoint handler runs.
func (s *Server) instrument(endpoint string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.counters.add(endpoint)
		if endpoint == epToken && r.Method == http.MethodPost {
			// Counted before faults apply, so a test can prove how often a
			// password was sent even when the answer was an injected error.
			// ParseForm keeps the values for the handler.
			if err := r.ParseForm(); err == nil {
				s.counters.add("token:" + r.PostForm.Get("grant_type"))
			}
		}
		if d := s.opts.Latency; d > 0 && !sleep(r, d) {
			return
		}
		f, ok := s.faults.take(endpoint)
		if ok {
			d := time.Duration(f.Delay)
			if f.Jitter > 0 {
				d += rand.N(time.Duration(f.Jitter))
			}
			if d > 0 && !sleep(r, d) {
				return
			}
			if f.Drop {
				s.counters.add("fault:drop")
				// ErrAbortHandler makes net/http close the connection
				// without a response and without logging a panic.
				panic(http.ErrAbortHandler)
			}
			if f.Status != 0 {
				s.counters.add("fault:status")
				if f.RetryAfter > 0 {
					w.Header().Set("Retry-After", strconv.FormatFloat(f.RetryAfter, 'f', -1, 64))
				}
				s.writeFault(w, r, endpoint, f.Status)
				return
			}
			if f.SlowBody > 0 {
				w = &slowWriter{ResponseWriter: w, r: r, total: time.Duration(f.SlowBody)}
			}
		}
		next(w, r)
		// Only the path is logged: query strings and bodies may carry
		// passwords, secrets or codes.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("endpoint", endpoint), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Duration("elapsed", time.Since(start)))
	})
}

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, endpoint string, status int) {
	switch endpoint {
	case epGraph:
		code := "generalException"
		msg := "An unspecified error has occurred."
		var extra map[string]string
		switch {
		case status == http.StatusTooManyRequests:
			// Graph's throttling.md sample response, innerError included.
			code, msg = "TooManyRequests", "Please retry again later."
			extra = map[string]string{"code": "429", "status": "429", "message": "Please retry after"}
		case status == http.StatusServiceUnavailable:
			code, msg = "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."
		}
		s.writeGraphErrorInner(w, r, status, code, msg, extra)
	case epAADGraph:
		s.writeAADGraphError(w, status, "Request_ThrottledTemporarily", "Request was throttled or the service is unavailable.")
	default:
		e := errServer(status)
		if status == http.StatusTooManyRequests {
			e = errThrottled()
		}
		s.writeSTSError(w, r, e)
	}
}

func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// slowWriter trickles the body out in ten flushed chunks over total.
type slowWriter struct {
	http.ResponseWriter
	r     *http.Request
	total time.Duration
}

func (sw *slowWriter) Write(b []byte) (int, error) {
	const parts = 10
	step := (len(b) + parts - 1) / parts
	if step == 0 {
		return 0, nil
	}
	n := 0
	for n < len(b) {
		end := min(n+step, len(b))
		m, err := sw.ResponseWriter.Write(b[n:end])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := sw.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		if n < len(b) && !sleep(sw.r, sw.total/parts) {
			return n, sw.r.Context().Err()
		}
	}
	return n, nil
}

// adminRoutes serves /_emulator/: counters, faults and key rollover at run
// time. Admin requests are neither counted nor faulted.
func (s *Server) adminRoutes() {
	s.mux.HandleFunc("GET /_emulator/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	s.mux.HandleFunc("DELETE /_emulator/counters", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.faults.snapshot())
	})
	s.mux.HandleFunc("DELETE /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("PUT /_emulator/faults/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := s.SetFault(r.PathValue("endpoint"), f); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("DELETE /_emulator/faults/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFault(r.PathValue("endpoint"))
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /_emulator/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"signing": s.SigningKeyID(), "published": s.PublishedKeyIDs()})
	})
	s.mux.HandleFunc("POST /_emulator/keys", func(w http.ResponseWriter, r *http.Request) {
		kid, err := s.PublishKey()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"kid": kid})
	})
	s.mux.HandleFunc("POST /_emulator/keys/{kid}/activate", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ActivateKey(r.PathValue("kid")); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("POST /_emulator/keys/roll", func(w http.ResponseWriter, r *http.Request) {
		kid, err := s.RollKey()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
	})
}
