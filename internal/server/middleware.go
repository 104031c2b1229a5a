package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/management"
)

// statusRecorder remembers what a handler answered, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// maxRequestBytes bounds every request body: the largest any endpoint
// accepts (the Management API's 1 MB).
const maxRequestBytes = 1 << 20

// withCommon wraps h with what every response gets: a request id (also in
// X-Request-Id), security headers, panic recovery and one access-log line.
// The access log has the path only: query strings can carry codes and
// tokens. trusted are the proxies whose X-Request-Id is kept.
func withCommon(h http.Handler, logger *slog.Logger, tls bool, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := ""
		// Exactly one: a proxy that adds its id rather than replacing the
		// client's forwards both, the client's first.
		if h := r.Header.Values("X-Request-Id"); len(h) == 1 && attack.FromTrustedProxy(r, trusted) {
			id = incomingRequestID(h[0])
		}
		if id == "" {
			id = newRequestID()
		}
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		r = r.WithContext(ctx)
		hd := w.Header()
		hd.Set("X-Request-Id", id)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		if tls {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		rec := &statusRecorder{ResponseWriter: w}
		// Endpoints set tighter limits where they read a body; this one
		// bounds any handler that forgets to.
		r.Body = http.MaxBytesReader(rec, r.Body, maxRequestBytes)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(ctx, "panic serving request", "panic", p, "stack", string(debug.Stack()))
				switch {
				case rec.status != 0:
				case strings.HasPrefix(r.URL.Path, "/api/v2/"):
					// The Management API's SDKs read only its own error
					// format.
					management.WriteError(rec, errors.New("server: handler panicked"))
				default:
					// Like every other error answer: a cache must not keep
					// what a half-served token or userinfo request became.
					rec.Header().Set("Content-Type", "application/json; charset=utf-8")
					rec.Header().Set("Cache-Control", "no-store")
					rec.Header().Set("Pragma", "no-cache")
					rec.WriteHeader(http.StatusInternalServerError)
					_, _ = rec.Write([]byte(`{"error":"server_error","error_description":"Internal error."}` + "\n"))
				}
			}
			logger.InfoContext(ctx, "request",
				"method", r.Method,
				"path", r.URL.Path,
				"status", rec.status,
				"bytes", rec.bytes,
				"duration_ms", float64(time.Since(start).Microseconds())/1000,
				"remote", r.RemoteAddr,
			)
		}()
		h.ServeHTTP(rec, r)
	})
}

// maxRequestIDLength leaves room for the ids proxies generate (a UUID, 32
// hex digits, a trace id) and a prefix of the proxy's own.
const maxRequestIDLength = 128

// incomingRequestID is the X-Request-Id a trusted proxy sent, or "" when it
// is not short and plain. An id correlates our log lines with the proxy's
// only if our own infrastructure chose it: one from any client could
// repeat another request's id, and operators and log pipelines take
// request_id as unique. Hence trusted proxies only, as for
// X-Forwarded-For; and even from them only [A-Za-z0-9._:-], since a proxy
// may pass a client's header through unchanged and Go's server lets tabs,
// folded lines and non-UTF-8 bytes into header values.
func incomingRequestID(s string) string {
	if len(s) == 0 || len(s) > maxRequestIDLength {
		return ""
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return ""
		}
	}
	return s
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
