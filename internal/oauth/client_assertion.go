package oauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientauth"
	"github.com/gatehouse/gatehouse/internal/store"
)

// AssertionStore is what private_key_jwt reads and writes.
type AssertionStore interface {
	GetClientCredential(ctx context.Context, clientID, id string) (*store.ClientCredential, error)
	UseClientAssertion(ctx context.Context, clientID, jti string, expiresAt time.Time) error
}

// authenticateAssertion is private_key_jwt: the client proves itself with
// a JWT signed by one of the credentials its client_authentication_methods
// name, good once. Every refusal is Auth0's 401 access_denied, with the
// reason in the server log only.
func (p *Provider) authenticateAssertion(t *tokenRequest) (*store.Client, error) {
	if typ := t.get("client_assertion_type"); typ != clientauth.AssertionType {
		return nil, errInvalidRequest("client_assertion_type must be " + clientauth.AssertionType + ".")
	}
	raw, err := t.require("client_assertion")
	if err != nil {
		return nil, err
	}
	if t.hasBasic || t.get("client_secret") != "" {
		return nil, errUnauthorizedClient(errors.New("a client assertion and a client secret together"))
	}
	a, err := clientauth.Parse(raw)
	if err != nil {
		return nil, errUnauthorizedClient(err)
	}
	if id := t.get("client_id"); id != "" && id != a.ClientID {
		return nil, errInvalidRequest("client_id and the client assertion's iss differ.")
	}
	ctx := t.r.Context()
	c, err := p.clients.GetClient(ctx, a.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthorizedClient(errors.New("client assertion of an unknown client"))
	}
	if err != nil {
		return nil, errServer(err)
	}
	if c.PrivateKeyJWTCredentials == nil || p.assertions == nil {
		return nil, errUnauthorizedClient(errors.New("client assertion from a client not configured for private_key_jwt"))
	}
	now := p.now()
	var keys []clientauth.Key
	for _, id := range c.PrivateKeyJWTCredentials {
		cr, err := p.assertions.GetClientCredential(ctx, c.ClientID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, errServer(err)
		}
		if cr.ExpiresAt != nil && !now.Before(*cr.ExpiresAt) {
			continue
		}
		pub, _, err := clientauth.ParsePEM(cr.PEM)
		if err != nil {
			return nil, errServer(fmt.Errorf("credential %s: %w", cr.ID, err))
		}
		keys = append(keys, clientauth.Key{KID: cr.KID, Alg: cr.Alg, Pub: pub})
	}
	// Auth0 wants the tenant URL; RFC 7523 suggests the token endpoint.
	v, err := a.Verify(keys, []string{p.issuer, p.issuer + "oauth/token"}, now)
	if err != nil {
		return nil, errUnauthorizedClient(err)
	}
	switch err := p.assertions.UseClientAssertion(ctx, c.ClientID, v.JTI, v.ExpiresAt); {
	case errors.Is(err, store.ErrConflict):
		return nil, errUnauthorizedClient(errors.New("client assertion replayed"))
	case err != nil:
		return nil, errServer(err)
	}
	return c, nil
}
