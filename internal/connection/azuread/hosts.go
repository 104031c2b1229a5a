package azuread

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// UpstreamHostsSetting is the operator setting that allows more base URLs
// than Microsoft's own; errors about a refused host name it.
const UpstreamHostsSetting = "GATEHOUSE_UPSTREAM_HOSTS"

// Microsoft's Entra ID sign-in hosts: the global service, US Government,
// and China operated by 21Vianet under both of its names. Sources:
// https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
// (Microsoft Entra authentication endpoints) and
// https://learn.microsoft.com/graph/deployments (app registration and
// token service root endpoints).
var builtinAuthorityHosts = []string{
	"https://login.microsoftonline.com",
	"https://login.microsoftonline.us",
	"https://login.partner.microsoftonline.cn",
	"https://login.chinacloudapi.cn",
}

// Microsoft Graph's service roots: global, US Government L4 and L5 (DoD),
// China. Source: https://learn.microsoft.com/graph/deployments (Microsoft
// Graph and Graph Explorer service root endpoints).
var builtinGraphHosts = []string{
	"https://graph.microsoft.com",
	"https://graph.microsoft.us",
	"https://dod-graph.microsoft.us",
	"https://microsoftgraph.chinacloudapi.cn",
}

// UpstreamHosts decides where a waad connection may send credentials:
// authority_host receives the client secret and every user's password,
// graph_host the users' upstream access tokens. Those are the operator's
// decision, not a Management API caller's, so the options may name only
// Microsoft's hosts and the base URLs the operator allows. The nil
// *UpstreamHosts allows Microsoft's hosts only.
type UpstreamHosts struct {
	extra []string // normalised by BaseURL
}

// NewUpstreamHosts allows Microsoft's hosts and the base URLs extra
// (scheme://host[:port]), e.g. a local Entra emulator or an egress proxy.
func NewUpstreamHosts(extra []string) (*UpstreamHosts, error) {
	h := &UpstreamHosts{}
	for _, e := range extra {
		n, err := BaseURL(e)
		if err != nil {
			return nil, err
		}
		h.extra = append(h.extra, n)
	}
	return h, nil
}

// BaseURL normalises scheme://host[:port]: lower case, the default port
// and a trailing slash dropped. Anything more (a path, a query,
// credentials) is refused, so that allowing a host allows exactly it.
func BaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a base URL (scheme://host[:port])")
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not a base URL (scheme://host[:port])", shownURL(u))
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#") {
		return "", fmt.Errorf("%q must be scheme://host[:port], without credentials, path, query or fragment", shownURL(u))
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	switch {
	case scheme == "https":
	case scheme == "http" && isLoopback(host):
	case scheme == "http":
		return "", fmt.Errorf("%q: http:// is allowed only for loopback hosts; use https://", shownURL(u))
	default:
		return "", fmt.Errorf("%q must be an https:// URL", shownURL(u))
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// Check refuses options whose authority_host or graph_host is not
// allowed, with an *OptionError naming the option. o must have had
// Defaults and Validate.
func (h *UpstreamHosts) Check(o *Options) error {
	for _, c := range []struct {
		prop, value string
		builtin     []string
	}{
		{"authority_host", o.AuthorityHost, builtinAuthorityHosts},
		{"graph_host", o.GraphHost, builtinGraphHosts},
	} {
		if !h.allows(c.value, c.builtin) {
			return optErr(c.prop, "%q is not an allowed host: Gatehouse sends credentials only to Microsoft's hosts (%s); "+
				"the operator must allow any other host in %s", c.value, strings.Join(c.builtin, ", "), UpstreamHostsSetting)
		}
	}
	return nil
}

func (h *UpstreamHosts) allows(value string, builtin []string) bool {
	n, err := BaseURL(value)
	if err != nil {
		return false
	}
	return slices.Contains(builtin, n) || (h != nil && slices.Contains(h.extra, n))
}

// shownURL is u as an error may echo it: scheme, host and path. An
// operator may paste a proxy's URL with a password, or a key in its
// query, and what is refused must not come back in an answer, a terminal
// or a log; a URL that does not parse is not echoed at all. A path with
// an "@" is not shown either: user info typed without the "//"
// (https:/u:pw@host) is parsed as the path.
func shownURL(u *url.URL) string {
	if strings.Contains(u.Path, "@") {
		return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String() + "/…"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
