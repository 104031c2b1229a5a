package management

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// audited wraps a write route (POST, PATCH, PUT, DELETE) so that each call
// by an authenticated caller leaves Auth0's sapi or fapi event: which
// application, which route, from where, and the status it got. Bodies
// stay out of the log: they carry client secrets, passwords and keys.
// Calls refused before the handler (no token, a bad token, a missing
// scope) are in the server's log only.
func (a *API) audited(pattern string, h http.HandlerFunc) http.HandlerFunc {
	method, route, _ := strings.Cut(pattern, " ")
	if a.audit == nil || method == http.MethodGet {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			// A panicking write may have changed something before it
			// failed: it is recorded as the 500 the server will answer,
			// and the panic goes on to that answer.
			if v := recover(); v != nil {
				a.record(r, route, http.StatusInternalServerError)
				panic(v)
			}
		}()
		h(sw, r)
		a.record(r, route, sw.status)
	}
}

// record stores the sapi or fapi event of a write answered with status.
func (a *API) record(r *http.Request, route string, status int) {
	typ := audit.SuccessAPIOperation
	if status >= 400 {
		typ = audit.FailedAPIOperation
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	e := &audit.Event{
		Type:      typ,
		ClientID:  strings.TrimSuffix(PrincipalFrom(r.Context()).Subject, "@clients"),
		IP:        ip,
		UserAgent: r.UserAgent(),
		Hostname:  r.Host,
		Details: map[string]any{
			"request":  map[string]any{"method": r.Method, "path": r.URL.Path, "route": route},
			"response": map[string]any{"statusCode": status},
		},
	}
	// The write is done; a lost event is logged, not turned into an
	// error the caller would retry.
	if err := a.audit.Record(context.WithoutCancel(r.Context()), e); err != nil {
		a.logger.ErrorContext(r.Context(), "recording log event failed", "type", typ, "error", err)
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
