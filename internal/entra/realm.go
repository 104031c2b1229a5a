package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// AccountType is what Entra's user realm discovery says of a user's domain.
type AccountType string

// Account types of user realm discovery (reference §4.1).
const (
	AccountManaged   AccountType = "Managed"
	AccountFederated AccountType = "Federated"
	AccountUnknown   AccountType = "Unknown"
)

// Realm lookups tell a broker why Entra refused a password, so they must
// never hold up or multiply a login's cost: a short timeout
// (Options.RealmTimeout), one lookup per
// domain an hour (a failed one is retried after a minute), and a global
// budget of new lookups that a caller inventing domains cannot exceed.
// The budget also bounds the cache: at most realmBurst plus an hour's refill
// of entries can be live at once, well under realmCacheSize.
const (
	realmTTL        = time.Hour
	realmFailureTTL = time.Minute
	realmCacheSize  = 1024
	realmBurst      = 20
	realmRefill     = 6 * time.Second // 10 new lookups a minute
)

// ErrRealmBudget is returned instead of a lookup when the budget of new
// lookups is spent.
var ErrRealmBudget = errors.New("entra: user realm lookup budget exhausted")

type realmEntry struct {
	typ     AccountType
	err     error
	expires time.Time
}

type realmCall struct {
	done chan struct{}
	typ  AccountType
	err  error
}

type realmCache struct {
	mu       sync.Mutex
	entries  map[string]realmEntry
	inflight map[string]*realmCall
	tokens   float64
	refilled time.Time
}

// domainOf returns the lowercased domain of a user name, or "" when it has
// none a realm could be looked up for. A UPN is a user name, "@" and a
// suffix (learn.microsoft.com windows/win32/secauthn/user-name-formats):
// a name with another "@" is none, and must not be looked up, since
// Entra may read its domain elsewhere than after the last "@", where
// the answer would be cached, for an hour, for every user of that domain.
func domainOf(username string) string {
	at := strings.IndexByte(username, '@')
	if at <= 0 || strings.IndexByte(username[at+1:], '@') >= 0 {
		return ""
	}
	d := strings.ToLower(username[at+1:])
	if d == "" || len(d) > 253 || strings.ContainsAny(d, "/?#%\\@ ") {
		return ""
	}
	return d
}

// UserRealm returns the account type Entra's user realm discovery gives for
// username's domain at ep's authority host: GET
// {authority}/common/userrealm/{username}?api-version=1.0, unauthenticated,
// as MSAL calls it before a password grant (reference §4.1). It takes no
// password and sends none. Federation is a property of the domain
// (Graph domain.authenticationType), so answers are cached per domain, for
// an hour, in a bounded cache shared by all connections of the Client.
// Past the lookup budget it returns ErrRealmBudget without calling Entra.
func (c *Client) UserRealm(ctx context.Context, ep Endpoint, username string) (AccountType, error) {
	domain := domainOf(username)
	if domain == "" {
		return "", errors.New("entra: no domain in the user name for a user realm lookup")
	}
	key := ep.authority() + "|" + domain
	rc := &c.realms
	now := c.now()

	rc.mu.Lock()
	if e, ok := rc.entries[key]; ok && now.Before(e.expires) {
		rc.mu.Unlock()
		return e.typ, e.err
	}
	call, ok := rc.inflight[key]
	if !ok {
		if !rc.take(now) {
			rc.mu.Unlock()
			return "", ErrRealmBudget
		}
		call = &realmCall{done: make(chan struct{})}
		if rc.inflight == nil {
			rc.inflight = map[string]*realmCall{}
		}
		rc.inflight[key] = call
		// One lookup answers every login of the domain that waits for
		// it, so the caller's cancellation must not end it for the others.
		go c.lookupRealm(context.WithoutCancel(ctx), ep, username, key, call)
	}
	rc.mu.Unlock()

	select {
	case <-call.done:
		return call.typ, call.err
	case <-ctx.Done():
		return "", fmt.Errorf("entra: user realm: %w", ctx.Err())
	}
}

// take spends one lookup from the budget, a token bucket refilled one
// token every realmRefill up to realmBurst. Called with mu held.
func (rc *realmCache) take(now time.Time) bool {
	if rc.refilled.IsZero() {
		rc.tokens, rc.refilled = realmBurst, now
	}
	if now.After(rc.refilled) {
		rc.tokens = min(realmBurst, rc.tokens+float64(now.Sub(rc.refilled))/float64(realmRefill))
		rc.refilled = now
	}
	if rc.tokens < 1 {
		return false
	}
	rc.tokens--
	return true
}

func (c *Client) lookupRealm(ctx context.Context, ep Endpoint, username, key string, call *realmCall) {
	ctx, cancel := context.WithTimeout(ctx, c.realmTimeout)
	defer cancel()
	call.typ, call.err = c.fetchRealm(ctx, ep, username)
	ttl := realmTTL
	if call.err != nil {
		ttl = realmFailureTTL
	}
	rc := &c.realms
	now := c.now()
	rc.mu.Lock()
	rc.store(key, realmEntry{typ: call.typ, err: call.err, expires: now.Add(ttl)}, now)
	delete(rc.inflight, key)
	rc.mu.Unlock()
	close(call.done)
}

// store adds an entry, first dropping expired ones and then, should the
// cache still be full, the one closest to expiry. Called with mu held.
func (rc *realmCache) store(key string, e realmEntry, now time.Time) {
	if rc.entries == nil {
		rc.entries = map[string]realmEntry{}
	}
	if _, ok := rc.entries[key]; !ok && len(rc.entries) >= realmCacheSize {
		for k, v := range rc.entries {
			if !now.Before(v.expires) {
				delete(rc.entries, k)
			}
		}
		if len(rc.entries) >= realmCacheSize {
			oldest := ""
			for k, v := range rc.entries {
				if oldest == "" || v.expires.Before(rc.entries[oldest].expires) {
					oldest = k
				}
			}
			delete(rc.entries, oldest)
		}
	}
	rc.entries[key] = e
}

func (c *Client) fetchRealm(ctx context.Context, ep Endpoint, username string) (AccountType, error) {
	// The user name is in the URL, so transport errors, which quote it,
	// are reported without it.
	u := ep.authority() + "/common/userrealm/" + url.PathEscape(username) + "?api-version=1.0"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", errors.New("entra: user realm: invalid request URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("entra: user realm: %w", unreachable(err))
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return "", fmt.Errorf("entra: user realm: %w", unreachable(err))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("entra: user realm: %w", newError(resp, body))
	}
	var r struct {
		AccountType string `json:"account_type"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("entra: user realm: %w", err)
	}
	switch t := AccountType(r.AccountType); t {
	case AccountManaged, AccountFederated, AccountUnknown:
		return t, nil
	}
	return "", fmt.Errorf("entra: user realm: unknown account_type %q", r.AccountType)
}
