package oauth

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/clientauth"
)

// discoveryDocument lists only what Gatehouse serves: advertising an
// endpoint or a method that is not implemented breaks clients that trust it.
type discoveryDocument struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthSigningAlgs []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	ClaimsSupported                   []string `json:"claims_supported,omitempty"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	grants := make([]string, 0, len(p.grants))
	for _, g := range grantOrder {
		if _, ok := p.grants[g]; ok {
			grants = append(grants, g)
		}
	}
	doc := discoveryDocument{
		Issuer: p.issuer,
		// No authorization endpoint yet, so no response types.
		TokenEndpoint:                     p.issuer + "oauth/token",
		JWKSURI:                           p.issuer + ".well-known/jwks.json",
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               grants,
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
	}
	if p.assertions != nil {
		doc.TokenEndpointAuthMethodsSupported = append(doc.TokenEndpointAuthMethodsSupported, "private_key_jwt")
		doc.TokenEndpointAuthSigningAlgs = clientauth.Algs
	}
	// Scopes and claims describe ID tokens, which only user grants issue.
	if _, ok := p.grants["password"]; ok {
		doc.UserinfoEndpoint = p.issuer + "userinfo"
		doc.ScopesSupported = []string{"openid", "profile", "email", "offline_access"}
		doc.ClaimsSupported = []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "nickname", "picture", "sub", "updated_at"}
		// Auth0 advertises its /oauth/revoke (auth0-api.md §1.5); SDKs look it
		// up here. It authenticates clients as the token endpoint does, and
		// without this list RFC 8414 §2 would have clients assume
		// client_secret_basic only, which public clients cannot use.
		if p.refresh != nil {
			doc.RevocationEndpoint = p.issuer + "oauth/revoke"
			doc.RevocationEndpointAuthMethods = doc.TokenEndpointAuthMethodsSupported
			doc.RevocationEndpointAuthSigningAlgs = doc.TokenEndpointAuthSigningAlgs
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(doc)
}

// grantOrder fixes the order grants are advertised in.
var grantOrder = []string{
	"client_credentials",
	"password",
	"http://auth0.com/oauth/grant-type/password-realm",
	"refresh_token",
	"authorization_code",
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	// Short caching: a rotated key must reach verifiers before it signs.
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(p.keys.JWKS())
}
