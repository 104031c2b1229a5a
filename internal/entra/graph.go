package entra

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Audiences of Microsoft Graph access tokens: the resource URI in each cloud,
// or Graph's application id.
var graphAudiences = []string{
	"00000003-0000-0000-c000-000000000000",
	"https://graph.microsoft.com",
	"https://graph.microsoft.us",
	"https://dod-graph.microsoft.us",
	"https://microsoftgraph.chinacloudapi.cn",
}

// The retired Azure AD Graph: its application id and resource URIs. The
// seed's workaround (App ID URI https://graph.windows.net) produces these.
var legacyGraphAudiences = []string{
	"00000002-0000-0000-c000-000000000000",
	"https://graph.windows.net",
	"https://graph.microsoftazure.us",
	"https://graph.chinacloudapi.cn",
	"https://graph.cloudapi.de",
}

func audienceIn(aud string, list []string) bool {
	aud = strings.TrimRight(strings.ToLower(aud), "/")
	return contains(list, aud)
}

// IsGraphAudience reports whether a token with this aud can call Microsoft Graph.
func IsGraphAudience(aud string) bool { return audienceIn(aud, graphAudiences) }

// IsLegacyGraphAudience reports whether aud is the retired Azure AD Graph.
// Such a token cannot call Microsoft Graph either; the broker must warn.
func IsLegacyGraphAudience(aud string) bool { return audienceIn(aud, legacyGraphAudiences) }

// AccessTokenAudience reads the aud claim of an upstream access token WITHOUT
// verifying it; Graph tokens are not meant to be validated by clients. It only
// tells the broker whether calling Graph with the token can work.
func AccessTokenAudience(rawJWT string) (string, error) {
	parts := strings.Split(rawJWT, ".")
	if len(parts) != 3 {
		return "", errors.New("entra: access token is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("entra: access token payload: %w", err)
	}
	var c struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("entra: access token payload: %w", err)
	}
	var aud string
	if json.Unmarshal(c.Aud, &aud) != nil {
		var auds []string
		if json.Unmarshal(c.Aud, &auds) != nil || len(auds) == 0 {
			return "", errors.New("entra: access token has no aud")
		}
		aud = auds[0]
	}
	if aud == "" {
		return "", errors.New("entra: access token has no aud")
	}
	return aud, nil
}

// graphBase normalises a Graph host ("graph.microsoft.com", a URL, or an
// emulator's http://127.0.0.1:port) to a scheme://host base without a slash.
func graphBase(host string) (*url.URL, error) {
	if host == "" {
		host = GlobalGraph
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(strings.TrimRight(host, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("entra: invalid graph host %q", host)
	}
	return u, nil
}

// graphGet GETs a Graph URL with the user's token and decodes the JSON answer.
func (c *Client) graphGet(ctx context.Context, u, accessToken string, dst any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("entra: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("entra: graph: %w", err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return fmt.Errorf("entra: graph: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return newGraphError(resp, body)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("entra: graph: %w", err)
	}
	return nil
}

// Me returns the signed-in user's Graph properties (GET /v1.0/me). With
// selectFields it asks for exactly those ($select); otherwise Graph's default
// set. Values keep their JSON types; OData annotations are dropped.
func (c *Client) Me(ctx context.Context, graphHost, accessToken string, selectFields []string) (map[string]any, error) {
	base, err := graphBase(graphHost)
	if err != nil {
		return nil, err
	}
	u := base.JoinPath("v1.0", "me")
	if len(selectFields) > 0 {
		u.RawQuery = "$select=" + url.QueryEscape(strings.Join(selectFields, ","))
	}
	var me map[string]any
	if err := c.graphGet(ctx, u.String(), accessToken, &me); err != nil {
		return nil, err
	}
	for k := range me {
		if strings.HasPrefix(k, "@odata.") {
			delete(me, k)
		}
	}
	return me, nil
}

// Group is a Microsoft Graph group the user belongs to.
type Group struct {
	ID          string
	DisplayName string
}

// maxGraphPages bounds the pages of one membership listing: 99,900 objects
// at the default page size, far beyond what a user is a member of, and an
// end to a nextLink that never runs out (one that loops, or a proxy's).
const maxGraphPages = 100

// MemberOf lists the user's groups: direct ones (/me/memberOf), or with
// transitive also those inherited through nested groups
// (/me/transitiveMemberOf). Directory roles and administrative units are
// skipped. It follows @odata.nextLink until the end or until max groups
// (max <= 0: no limit), for at most maxGraphPages pages.
func (c *Client) MemberOf(ctx context.Context, graphHost, accessToken string, transitive bool, max int) ([]Group, error) {
	base, err := graphBase(graphHost)
	if err != nil {
		return nil, err
	}
	rel := "memberOf"
	if transitive {
		rel = "transitiveMemberOf"
	}
	u := base.JoinPath("v1.0", "me", rel)
	top := c.pageSize
	if max > 0 && max < top {
		top = max
	}
	u.RawQuery = fmt.Sprintf("$select=id,displayName&$top=%d", top)
	next := u.String()
	var groups []Group
	for pages := 0; next != ""; pages++ {
		if pages == maxGraphPages {
			return nil, fmt.Errorf("entra: graph %s: more than %d pages; set a groups limit", rel, maxGraphPages)
		}
		var page struct {
			Value []struct {
				Type        string `json:"@odata.type"`
				ID          string `json:"id"`
				DisplayName string `json:"displayName"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.graphGet(ctx, next, accessToken, &page); err != nil {
			return nil, err
		}
		for _, o := range page.Value {
			if o.Type != "#microsoft.graph.group" {
				continue
			}
			groups = append(groups, Group{ID: o.ID, DisplayName: o.DisplayName})
			if max > 0 && len(groups) >= max {
				return groups, nil
			}
		}
		if next, err = sameOrigin(base, page.NextLink); err != nil {
			return nil, fmt.Errorf("entra: graph nextLink: %w", err)
		}
	}
	return groups, nil
}

// sameOrigin accepts a link only on the host of base: a Graph nextLink
// followed elsewhere would hand the user's token to another server, keys
// fetched elsewhere would let another server sign id_tokens.
func sameOrigin(base *url.URL, link string) (string, error) {
	if link == "" {
		return "", nil
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", err
	}
	if !sameHost(u, base) {
		return "", fmt.Errorf("%s is not on %s://%s", u.Redacted(), base.Scheme, base.Host)
	}
	return u.String(), nil
}

// sameHost compares scheme, host and port, a default port written or not:
// a host option given as https://login.microsoftonline.com:443 is the
// origin of the links Entra and Graph write without the port.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
