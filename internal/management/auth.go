package management

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// VerifyFunc checks a Management API access token (signature, issuer,
// audience, expiry) and returns its scopes and subject.
type VerifyFunc func(ctx context.Context, raw string) (scopes []string, subject string, err error)

type principalKey struct{}

// Principal is the caller of a Management API route.
type Principal struct {
	Subject string
	Scopes  []string
}

// Has reports whether the caller holds scope.
func (p Principal) Has(scope string) bool { return slices.Contains(p.Scopes, scope) }

// PrincipalFrom returns the authenticated caller of the request.
func PrincipalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// requireScope wraps h so that it runs only for a valid bearer token that
// holds scope.
func (a *API) requireScope(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		if authz == "" {
			a.unauthorized(w, "Missing authentication")
			return
		}
		scheme, raw, ok := strings.Cut(authz, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
			WriteError(w, &Error{Status: http.StatusBadRequest, Message: "Bad HTTP authentication header format"})
			return
		}
		scopes, sub, err := a.verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			a.logger.InfoContext(r.Context(), "management token refused", "reason", err.Error())
			a.unauthorized(w, "Invalid token")
			return
		}
		if !slices.Contains(scopes, scope) {
			WriteError(w, &Error{Status: http.StatusForbidden, Message: "Insufficient scope, expected any of: " + scope, ErrorCode: "insufficient_scope"})
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, Principal{Subject: sub, Scopes: scopes})
		h(w, r.WithContext(ctx))
	}
}

func (a *API) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	WriteError(w, &Error{Status: http.StatusUnauthorized, Message: msg})
}
