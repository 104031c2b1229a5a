package management

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// VerifyFunc checks a Management API access token (signature, issuer,
// audience, expiry) and returns its scopes, subject and issue time.
type VerifyFunc func(ctx context.Context, raw string) (scopes []string, subject string, issued time.Time, err error)

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
	// RFC 6750 §3: the challenge names the scope a 403 lacked.
	scopeChallenge := `Bearer error="insufficient_scope", scope="` + strings.Join(scopes, " ") + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Values("Authorization")
		if len(authz) == 0 || len(authz) == 1 && authz[0] == "" {
			// RFC 6750 §3.1: a request without credentials gets a
			// challenge without an error code.
			w.Header().Set("WWW-Authenticate", "Bearer")
			WriteError(w, &Error{Status: http.StatusUnauthorized, Message: "Missing authentication"})
			return
		}
		scheme, raw, ok := strings.Cut(authz[0], " ")
		// Of two Authorization headers, a proxy in front may have checked
		// the one this check would not.
		if len(authz) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
			WriteError(w, &Error{Status: http.StatusBadRequest, Message: "Bad HTTP authentication header format"})
			return
		}
		held, sub, issued, err := a.verify(r.Context(), strings.TrimSpace(raw))
		if err == nil {
			held, err = a.stillGranted(r.Context(), sub, issued, held)
		}
		if err != nil {
			var me *Error
			if errors.As(err, &me) {
				a.logger.ErrorContext(r.Context(), "management token check failed", "error", err.Error())
				WriteError(w, me)
				return
			}
			a.logger.InfoContext(r.Context(), "management token refused", "reason", err.Error())
			a.unauthorized(w, "Invalid token")
			return
		}
		for _, s := range scopes {
			if !slices.Contains(held, s) {
				w.Header().Set("WWW-Authenticate", scopeChallenge)
				WriteError(w, &Error{Status: http.StatusForbidden, Message: expected, ErrorCode: "insufficient_scope"})
				return
			}
		}
		ctx := context.WithValue(r.Context(), principalKey{}, Principal{Subject: sub, Scopes: held})
		h(w, r.WithContext(ctx))
	}
}

// stillGranted returns the scopes of held that the token's application
// is still granted, and refuses the token of an application that no
// longer exists, has lost its grant or no longer has the
// client_credentials grant type. Every Management API token is a
// client_credentials token ("<client_id>@clients"), and Auth0 offers no
// way to revoke one before it expires
// (https://auth0.com/docs/tokens/apiv2: "You cannot renew or revoke a
// Management API token"); here deleting a leaked application, or its
// client grant, or taking scopes out of the grant, takes effect at once,
// not ManagementTokenLifetime later. The application's scopes are what
// the token endpoint would issue it now (oauth's issueClientCredentials).
// A store failure is a 500, not a reason to call the token invalid.
func (a *API) stillGranted(ctx context.Context, sub string, issued time.Time, held []string) ([]string, error) {
	id, ok := strings.CutSuffix(sub, "@clients")
	if !ok {
		return nil, fmt.Errorf("subject %q is not an application", sub)
	}
	c, err := a.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("application %s no longer exists", id)
	case err != nil:
		return nil, internalError(fmt.Errorf("management: read the token's application: %w", err))
	}
	// A token older than its application was issued to one deleted since:
	// the configured admin application is made again under its client_id
	// by the next start after its deletion, and must not take on the
	// tokens deleting it shut out. The two times come from the clocks of
	// the replicas that wrote them, and iat is in whole seconds: a token
	// issued within tokens.ReplicaSkew of the application's making is
	// taken as its own, or a new application's first token from a replica
	// whose clock is behind would be refused until it expires.
	if issued.Add(tokens.ReplicaSkew).Before(c.CreatedAt) {
		return nil, fmt.Errorf("application %s made again after the token was issued", id)
	}
	// The token endpoint refuses such an application a new token
	// (unauthorized_client); taking the grant type away is how an
	// administrator stops an application without deleting it.
	if !slices.Contains(c.GrantTypes, "client_credentials") {
		return nil, fmt.Errorf("application %s no longer lists client_credentials in grant_types", id)
	}
	var allowed []string
	if slices.Contains(c.ManagementScopes, "*") {
		allowed = Scopes
	} else {
		allowed = c.ManagementScopes
	}
	g, err := a.store.FindClientGrant(ctx, id, a.issuer+"api/v2/")
	switch {
	case errors.Is(err, store.ErrNotFound):
		if len(allowed) == 0 {
			return nil, fmt.Errorf("application %s no longer has a grant for the Management API", id)
		}
	case err != nil:
		return nil, internalError(fmt.Errorf("management: read the token's client grant: %w", err))
	default:
		allowed = append(slices.Clone(allowed), g.Scope...)
	}
	return slices.DeleteFunc(slices.Clone(held), func(s string) bool { return !slices.Contains(allowed, s) }), nil
}

func (a *API) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	WriteError(w, &Error{Status: http.StatusUnauthorized, Message: msg})
}
