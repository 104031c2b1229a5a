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
// holds scope: one scope, or several separated by spaces, all required.
func (a *API) requireScope(scope string, h http.HandlerFunc) http.HandlerFunc {
	scopes := strings.Fields(scope)
	// Auth0's wording: "any of" for the usual single scope, "all of" when
	// an operation needs several (e.g. rotating the signing keys).
	expected := "Insufficient scope, expected any of: " + strings.Join(scopes, ",")
	if len(scopes) > 1 {
		expected = "Insufficient scope, expected all of: " + strings.Join(scopes, ",")
	}
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
		held, sub, err := a.verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			a.logger.InfoContext(r.Context(), "management token refused", "reason", err.Error())
			a.unauthorized(w, "Invalid token")
			return
		}
		for _, s := range scopes {
			if !slices.Contains(held, s) {
				WriteError(w, &Error{Status: http.StatusForbidden, Message: expected, ErrorCode: "insufficient_scope"})
				return
			}
		}
		ctx := context.WithValue(r.Context(), principalKey{}, Principal{Subject: sub, Scopes: held})
		h(w, r.WithContext(ctx))
	}
}

func (a *API) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	WriteError(w, &Error{Status: http.StatusUnauthorized, Message: msg})
}
