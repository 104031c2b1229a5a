package entra

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrInvalidIDToken is wrapped by every id_token validation failure, as
// opposed to failures to load the tenant's keys (an *Error).
var ErrInvalidIDToken = errors.New("entra: invalid id_token")

// clockSkew is the tolerance for exp, nbf and iat between us and Entra.
const clockSkew = 5 * time.Minute

// ValidateOptions says which id_tokens a connection accepts.
type ValidateOptions struct {
	// Endpoint is the one the token was obtained from; its version selects
	// the v1 or v2 metadata, as Microsoft requires.
	Endpoint Endpoint
	// ClientID is the connection's application id, the only accepted aud.
	ClientID string
	// AllowedTenants are the tenant ids accepted on the common endpoint.
	AllowedTenants []string
	// AllowAnyTenant accepts any tenant on the common endpoint when
	// AllowedTenants is empty. It must be explicit: with it, a user of any
	// Entra tenant in the world can sign in.
	AllowAnyTenant bool
	// FromTokenEndpoint says the token is the id_token of a token endpoint
	// response this Client received itself. Only then is an unsigned
	// token of the v1 endpoint accepted, which is what that endpoint sends
	// (AD v1-protocols-oauth-code.md: id_token "An unsigned JSON Web Token",
	// alg none): OpenID Connect Core §3.1.3.7 lets the TLS server
	// validation of the token endpoint stand in for the signature of an
	// id_token received from it directly. Every claim is checked all the
	// same.
	FromTokenEndpoint bool
}

// IDTokenClaims holds the claims of a v1 or v2 Entra id_token.
type IDTokenClaims struct {
	Issuer            string       `json:"iss"`
	Subject           string       `json:"sub"`
	Audience          jwt.Audience `json:"aud"`
	ObjectID          string       `json:"oid"`
	TenantID          string       `json:"tid"`
	UPN               string       `json:"upn"`         // v1
	UniqueName        string       `json:"unique_name"` // v1
	PreferredUsername string       `json:"preferred_username"`
	Name              string       `json:"name"`
	GivenName         string       `json:"given_name"`
	FamilyName        string       `json:"family_name"`
	Email             string       `json:"email"`
	AMR               []string     `json:"amr"`    // v1
	IPAddr            string       `json:"ipaddr"` // v1
	IdP               string       `json:"idp"`
	Version           string       `json:"ver"`
	Roles             []string     `json:"roles"`
	Groups            []string     `json:"groups"`
	HasGroups         bool         `json:"hasgroups"`
	// ClaimNames and ClaimSources carry the groups overage. Their endpoint
	// points at the retired Azure AD Graph; load groups from Graph instead.
	ClaimNames   map[string]string      `json:"_claim_names"`
	ClaimSources map[string]ClaimSource `json:"_claim_sources"`

	IssuedAt  time.Time `json:"-"`
	NotBefore time.Time `json:"-"`
	Expiry    time.Time `json:"-"`
}

// ClaimSource is one distributed-claims source.
type ClaimSource struct {
	Endpoint string `json:"endpoint"`
}

// GroupsOverage reports whether the user has more groups than fit in the
// token, so Groups is incomplete and must be loaded from Graph.
func (c *IDTokenClaims) GroupsOverage() bool {
	_, ok := c.ClaimNames["groups"]
	return ok || c.HasGroups
}

// ValidateIDToken verifies an id_token from Entra's token endpoint: RS256
// signature by a key the tenant publishes (or, for the v1 endpoint's
// unsigned id_tokens, see FromTokenEndpoint), issuer from the tenant
// metadata, audience, times and tenant.
func (c *Client) ValidateIDToken(ctx context.Context, raw string, opts ValidateOptions) (*IDTokenClaims, error) {
	ep := opts.Endpoint
	if err := ep.check(); err != nil {
		return nil, err
	}
	if opts.ClientID == "" {
		return nil, errors.New("entra: validate id_token: no client id")
	}
	if ep.Common && len(opts.AllowedTenants) == 0 && !opts.AllowAnyTenant {
		return nil, errors.New("entra: the common endpoint needs allowed tenants, or AllowAnyTenant to accept every Entra tenant")
	}
	if payload, ok := unsignedPayload(raw); ok {
		if !opts.FromTokenEndpoint || ep.Version != V1 {
			return nil, fmt.Errorf("%w: unsigned", ErrInvalidIDToken)
		}
		meta, _, err := c.keys.get(ctx, ep, false)
		if err != nil {
			return nil, err
		}
		return c.checkPayload(payload, meta, signingKey{}, opts)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrInvalidIDToken)
	}
	meta, keys, err := c.keys.get(ctx, ep, false)
	if err != nil {
		return nil, err
	}
	key, ok := keys[kid]
	if !ok {
		// Entra may have rolled its keys since we fetched them.
		if meta, keys, err = c.keys.get(ctx, ep, true); err != nil {
			return nil, err
		}
		if key, ok = keys[kid]; !ok {
			// Keys we could not refresh explain an unknown kid better than
			// a forgery does: answer the outage.
			if err := c.keys.lastErr(ep); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: signed by unknown key %q", ErrInvalidIDToken, kid)
		}
	}
	payload, err := jws.Verify(key.key)
	if err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, fmt.Errorf("%w: bad signature", ErrInvalidIDToken)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	return c.checkPayload(payload, meta, key, opts)
}

// checkPayload decodes and checks the claims of an id_token whose signature,
// if any, was checked.
func (c *Client) checkPayload(payload []byte, meta *Metadata, key signingKey, opts ValidateOptions) (*IDTokenClaims, error) {
	// One pass of encoding/json over the payload, decoded only once Entra's
	// signature (or its token endpoint's TLS) holds: go-jose's jwt.Claims
	// decodes it once per destination with its slower decoder
	// (BenchmarkValidateIDToken: 202 allocations against 121).
	// encoding/json matches keys without regard to case, which only
	// Entra's own bytes can exercise.
	claims := new(IDTokenClaims)
	times := struct {
		*IDTokenClaims
		IssuedAt  *jwt.NumericDate `json:"iat"`
		NotBefore *jwt.NumericDate `json:"nbf"`
		Expiry    *jwt.NumericDate `json:"exp"`
	}{IDTokenClaims: claims}
	if err := json.Unmarshal(payload, &times); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidIDToken, err)
	}
	if err := checkClaims(claims, times.IssuedAt, times.NotBefore, times.Expiry, meta, key, opts, c.now()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	return claims, nil
}

// unsignedPayload returns the payload of an unsecured JWT (RFC 7519 §6: a
// header with alg none and no crit, an empty signature); ok is false for
// anything else.
func unsignedPayload(raw string) (payload []byte, ok bool) {
	h, rest, _ := strings.Cut(raw, ".")
	p, sig, found := strings.Cut(rest, ".")
	if !found || sig != "" || strings.Contains(p, ".") {
		return nil, false
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, false
	}
	var header map[string]json.RawMessage
	if json.Unmarshal(hb, &header) != nil || string(header["alg"]) != `"none"` || header["crit"] != nil {
		return nil, false
	}
	if payload, err = base64.RawURLEncoding.DecodeString(p); err != nil {
		return nil, false
	}
	return payload, true
}

func checkClaims(claims *IDTokenClaims, iat, nbf, exp *jwt.NumericDate, meta *Metadata, key signingKey, opts ValidateOptions, now time.Time) error {
	if want := map[Version]string{V1: "1.0", V2: "2.0"}[opts.Endpoint.Version]; claims.Version != "" && claims.Version != want {
		return fmt.Errorf("ver %q from the v%d endpoint", claims.Version, opts.Endpoint.Version)
	}
	tid := claims.TenantID
	if !isGUID(tid) {
		return fmt.Errorf("tid %q is not a tenant id", tid)
	}
	wantIss := strings.ReplaceAll(meta.Issuer, "{tenantid}", tid)
	if claims.Issuer != wantIss {
		return fmt.Errorf("iss %q, want %q", claims.Issuer, wantIss)
	}
	if key.issuer != "" && strings.ReplaceAll(key.issuer, "{tenantid}", tid) != claims.Issuer {
		return fmt.Errorf("iss %q is not the signing key's issuer", claims.Issuer)
	}
	// Entra accepts the client id in any case but writes the app's
	// canonical lower-case appId into aud (MSAL for Python issue #304), so
	// a GUID compares without regard to case.
	if len(claims.Audience) != 1 || !sameClientID(claims.Audience[0], opts.ClientID) {
		return fmt.Errorf("aud %v, want %q", []string(claims.Audience), opts.ClientID)
	}
	if exp == nil {
		return errors.New("no exp")
	}
	claims.Expiry = exp.Time()
	if now.After(claims.Expiry.Add(clockSkew)) {
		return fmt.Errorf("expired at %s", claims.Expiry.UTC().Format(time.RFC3339))
	}
	if nbf != nil {
		claims.NotBefore = nbf.Time()
		if now.Add(clockSkew).Before(claims.NotBefore) {
			return fmt.Errorf("not valid before %s", claims.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	if iat != nil {
		claims.IssuedAt = iat.Time()
		if now.Add(clockSkew).Before(claims.IssuedAt) {
			return fmt.Errorf("issued in the future (%s)", claims.IssuedAt.UTC().Format(time.RFC3339))
		}
	}
	if claims.Subject == "" {
		return errors.New("no sub")
	}
	switch {
	case !opts.Endpoint.Common:
		if meta.TenantID == "" || !strings.EqualFold(tid, meta.TenantID) {
			return fmt.Errorf("tid %s is not the connection's tenant", tid)
		}
	case opts.AllowAnyTenant && len(opts.AllowedTenants) == 0:
	default:
		allowed := false
		for _, t := range opts.AllowedTenants {
			allowed = allowed || strings.EqualFold(t, tid)
		}
		if !allowed {
			return fmt.Errorf("tid %s is not an allowed tenant", tid)
		}
	}
	return nil
}

func sameClientID(aud, clientID string) bool {
	if isGUID(clientID) {
		return strings.EqualFold(aud, clientID)
	}
	return aud == clientID
}

// isGUID checks the 8-4-4-4-12 hex form of Entra tenant ids.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}
