package entra

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// msaTenantID is the tenant of personal Microsoft accounts (reference §2.1).
const msaTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"

// serveMetadata answers the v1 and v2 OpenID Provider Configuration
// documents. Field sets follow the captured documents of reference §2.4:
// a tenant id or verified domain yields its GUID in issuer and endpoints;
// common and (v2 only) organizations keep the alias in endpoints and put
// the literal {tenantid} template in the issuer.
func (s *Server) serveMetadata(v2 bool) http.HandlerFunc {
	// Rendered documents depend only on the base URL and tenant segment.
	var cache sync.Map
	return func(w http.ResponseWriter, r *http.Request) {
		seg := r.PathValue("tenant")
		t, alias, ok := s.endpointTenant(seg, v2)
		if !ok {
			s.writeSTSError(w, r, errTenantNotFound(seg, true))
			return
		}
		path := alias
		if t != nil {
			path = t.ID
		}
		key := s.base() + "|" + path
		if b, ok := cache.Load(key); ok {
			s.writeMetadata(w, b.([]byte))
			return
		}
		b, _ := json.Marshal(s.metadata(v2, t, path))
		cache.Store(key, b)
		s.writeMetadata(w, b)
	}
}

func (s *Server) writeMetadata(w http.ResponseWriter, b []byte) {
	w.Header().Set("Cache-Control", "max-age=86400, private")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeRaw(w, http.StatusOK, "application/json; charset=utf-8", b)
}

func (s *Server) metadata(v2 bool, t *Tenant, path string) map[string]any {
	base := s.base()
	host := base
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		host = u.Host
	}
	tid := "{tenantid}"
	var region any // null for the multi-tenant aliases
	if t != nil {
		tid = t.ID
		region = "WW"
	} else if v2 && path == "consumers" {
		// Personal accounts live in one tenant, so its metadata names
		// that tenant's issuer (reference §2.1 MSA tenant; clients of
		// /consumers pin this issuer).
		tid = msaTenantID
	}
	m := map[string]any{
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"kerberos_endpoint":                     base + "/" + path + "/kerberos",
		"tenant_region_scope":                   region,
		"cloud_instance_name":                   cloudInstanceName,
		// The emulator serves Graph itself, so the Graph hosts point back
		// at it; Entra names graph.windows.net and graph.microsoft.com.
		"cloud_graph_host_name": host,
		"msgraph_host":          host,
		"rbac_url":              "https://pas.windows.net",
	}
	if v2 {
		m["issuer"] = base + "/" + tid + "/v2.0"
		m["token_endpoint"] = base + "/" + path + "/oauth2/v2.0/token"
		m["authorization_endpoint"] = base + "/" + path + "/oauth2/v2.0/authorize"
		m["device_authorization_endpoint"] = base + "/" + path + "/oauth2/v2.0/devicecode"
		m["end_session_endpoint"] = base + "/" + path + "/oauth2/v2.0/logout"
		m["jwks_uri"] = base + "/" + path + "/discovery/v2.0/keys"
		m["userinfo_endpoint"] = base + "/oidc/userinfo"
		m["request_uri_parameter_supported"] = false
		m["response_types_supported"] = []string{"code", "id_token", "code id_token", "id_token token"}
		m["scopes_supported"] = []string{"openid", "profile", "email", "offline_access"}
		m["claims_supported"] = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
			"cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce",
			"preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"}
		return m
	}
	m["issuer"] = s.stsBase() + "/" + tid + "/"
	m["token_endpoint"] = base + "/" + path + "/oauth2/token"
	m["authorization_endpoint"] = base + "/" + path + "/oauth2/authorize"
	m["device_authorization_endpoint"] = base + "/" + path + "/oauth2/devicecode"
	m["end_session_endpoint"] = base + "/" + path + "/oauth2/logout"
	m["check_session_iframe"] = base + "/" + path + "/oauth2/checksession"
	m["jwks_uri"] = base + "/" + path + "/discovery/keys"
	m["userinfo_endpoint"] = base + "/" + path + "/openid/userinfo"
	m["microsoft_multi_refresh_token"] = true
	m["response_types_supported"] = []string{"code", "id_token", "code id_token", "token id_token", "token"}
	m["scopes_supported"] = []string{"openid"}
	m["claims_supported"] = []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
		"cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce",
		"email", "given_name", "family_name", "nickname"}
	return m
}

// serveUserRealm answers user realm discovery (reference §4.1):
// api-version=1.0 (the default, used by MSAL) in snake_case, 2.0/2.1 in
// PascalCase.
func (s *Server) serveUserRealm(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("user")
	domain := login
	if strings.Contains(login, "@") {
		domain = domainOf(login)
	}
	t := s.tenantByDomain(domain)
	kind := "Unknown"
	var dom Domain
	if t != nil {
		kind = "Managed"
		dom, _ = t.domain(domain)
		federated := dom.federated()
		if u := t.user(login); u != nil {
			federated = t.federated(u)
		}
		if federated {
			kind = "Federated"
		}
	}
	mex := dom.MetadataExchangeURI
	if mex == "" {
		mex = "https://adfs." + domain + "/adfs/services/trust/mex"
	}
	active := dom.ActiveSignInURI
	if active == "" {
		active = "https://adfs." + domain + "/adfs/services/trust/2005/usernamemixed"
	}
	passive := dom.PassiveSignInURI
	if passive == "" {
		passive = "https://adfs." + domain + "/adfs/ls/"
	}
	switch r.URL.Query().Get("api-version") {
	case "2.0", "2.1":
		m := map[string]any{
			"NameSpaceType":       kind,
			"Login":               login,
			"DomainName":          domain,
			"cloud_instance_name": cloudInstanceName,
		}
		if t != nil {
			brand := dom.FederationBrandName
			if brand == "" {
				brand = t.DisplayName
			}
			m["FederationBrandName"] = brand
			m["TenantBrandingInfo"] = nil
		}
		if kind == "Federated" {
			m["federation_protocol"] = "WSTrust"
			m["AuthURL"] = passive + "?username=" + url.QueryEscape(login) + "&wa=wsignin1.0&wtrealm=urn%3afederation%3aMicrosoftOnline&wctx="
		}
		writeJSON(w, http.StatusOK, m)
	default:
		m := map[string]any{
			"ver":                 "1.0",
			"account_type":        kind,
			"domain_name":         domain,
			"cloud_instance_name": cloudInstanceName,
			"cloud_audience_urn":  "urn:federation:MicrosoftOnline",
		}
		if kind == "Federated" {
			m["federation_protocol"] = "WSTrust"
			m["federation_metadata_url"] = mex
			m["federation_active_auth_url"] = active
		}
		writeJSON(w, http.StatusOK, m)
	}
}

// serveInstanceDiscovery answers MSAL's instance discovery (reference §4.2,
// MSAL Go authority.go AADInstanceDiscovery): where the tenant's metadata is
// and which hosts are aliases of this one.
func (s *Server) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	ae := r.URL.Query().Get("authorization_endpoint")
	if ae == "" {
		s.writeSTSError(w, r, errMissingParameter("authorization_endpoint"))
		return
	}
	u, err := url.Parse(ae)
	tenant, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if err != nil || tenant == "" {
		s.writeSTSError(w, r, errMalformed())
		return
	}
	host := s.base()
	if bu, err := url.Parse(host); err == nil && bu.Host != "" {
		host = bu.Host
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.base() + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}
