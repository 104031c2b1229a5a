package entra

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) client() *Client         { return NewClient(Options{Now: c.Now}) }
func opts(f *fakeEntra, v Version) ValidateOptions {
	return ValidateOptions{Endpoint: f.endpoint(v), ClientID: "11111111-2222-3333-4444-555555555555"}
}

func TestValidateIDToken(t *testing.T) {
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	ctx := context.Background()
	for _, v := range []Version{V1, V2} {
		raw := sign(t, rsaKey(t, 0), "kid-1", f.idClaims(v, clk.Now()))
		claims, err := c.ValidateIDToken(ctx, raw, opts(f, v))
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if claims.TenantID != testTID || claims.ObjectID == "" || claims.Name != "Adele Vance" || claims.Expiry.IsZero() {
			t.Fatalf("v%d: claims %+v", v, claims)
		}
		if v == V1 && (claims.UPN == "" || claims.UniqueName == "" || claims.AMR[0] != "pwd" || claims.IPAddr == "" || claims.GivenName != "Adele") {
			t.Fatalf("v1 claims %+v", claims)
		}
		if v == V2 && (claims.PreferredUsername == "" || claims.Email == "" || claims.Version != "2.0") {
			t.Fatalf("v2 claims %+v", claims)
		}
	}
}

func TestValidateIDTokenRejects(t *testing.T) {
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	now := clk.Now()
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	hsToken, _ := jwt.Signed(hs).Claims(f.idClaims(V2, now)).Serialize()
	tests := []struct {
		name string
		mod  func(map[string]any)
		raw  string
		want string
	}{
		{name: "aud", mod: func(c map[string]any) { c["aud"] = "someone-else" }, want: "aud"},
		{name: "two auds", mod: func(c map[string]any) { c["aud"] = []string{"11111111-2222-3333-4444-555555555555", "x"} }, want: "aud"},
		{name: "iss", mod: func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + testTID + "/v2.0/" }, want: "iss"},
		{name: "v1 iss on v2", mod: func(c map[string]any) { c["iss"] = "https://sts.windows.net/" + testTID + "/" }, want: "iss"},
		{name: "ver", mod: func(c map[string]any) { c["ver"] = "1.0" }, want: "ver"},
		{name: "expired", mod: func(c map[string]any) { c["exp"] = now.Add(-6 * time.Minute).Unix() }, want: "expired"},
		{name: "no exp", mod: func(c map[string]any) { delete(c, "exp") }, want: "exp"},
		{name: "nbf", mod: func(c map[string]any) { c["nbf"] = now.Add(6 * time.Minute).Unix() }, want: "not valid before"},
		{name: "iat", mod: func(c map[string]any) { c["iat"] = now.Add(6 * time.Minute).Unix() }, want: "future"},
		{name: "other tenant", mod: func(c map[string]any) {
			c["tid"] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
			c["iss"] = "https://login.microsoftonline.com/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/v2.0"
		}, want: "iss"},
		{name: "tid not guid", mod: func(c map[string]any) { c["tid"] = "contoso" }, want: "tid"},
		{name: "unknown kid", raw: sign(t, rsaKey(t, 1), "kid-x", f.idClaims(V2, now)), want: "unknown key"},
		{name: "wrong key for kid", raw: sign(t, rsaKey(t, 1), "kid-1", f.idClaims(V2, now)), want: "signature"},
		{name: "HS256", raw: hsToken, want: "unexpected signature algorithm"},
		{name: "garbage", raw: "not.a.jwt", want: "invalid id_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == "" {
				claims := f.idClaims(V2, now)
				tt.mod(claims)
				raw = sign(t, rsaKey(t, 0), "kid-1", claims)
			}
			_, err := c.ValidateIDToken(context.Background(), raw, opts(f, V2))
			if !errors.Is(err, ErrInvalidIDToken) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	// Within the skew is fine.
	claims := f.idClaims(V2, now)
	claims["exp"] = now.Add(-4 * time.Minute).Unix()
	if _, err := c.ValidateIDToken(context.Background(), sign(t, rsaKey(t, 0), "kid-1", claims), opts(f, V2)); err != nil {
		t.Fatalf("skew: %v", err)
	}
}

func TestValidateIDTokenCommonEndpoint(t *testing.T) {
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	other := "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	claims := f.idClaims(V2, clk.Now())
	claims["tid"], claims["iss"] = other, f.issuer(V2, other)
	raw := sign(t, rsaKey(t, 0), "kid-1", claims)
	o := opts(f, V2)
	o.Endpoint.Common = true

	if _, err := c.ValidateIDToken(context.Background(), raw, o); err == nil || !strings.Contains(err.Error(), "AllowAnyTenant") {
		t.Fatalf("no allow-list: %v", err)
	}
	o.AllowedTenants = []string{testTID}
	if _, err := c.ValidateIDToken(context.Background(), raw, o); !errors.Is(err, ErrInvalidIDToken) {
		t.Fatalf("tenant not allowed: %v", err)
	}
	o.AllowedTenants = []string{testTID, strings.ToUpper(other)}
	if _, err := c.ValidateIDToken(context.Background(), raw, o); err != nil {
		t.Fatalf("allowed tenant: %v", err)
	}
	o.AllowedTenants, o.AllowAnyTenant = []string{testTID}, true
	if _, err := c.ValidateIDToken(context.Background(), raw, o); !errors.Is(err, ErrInvalidIDToken) {
		t.Fatalf("an allow-list holds with AllowAnyTenant: %v", err)
	}
	o.AllowedTenants = nil
	if _, err := c.ValidateIDToken(context.Background(), raw, o); err != nil {
		t.Fatalf("any tenant: %v", err)
	}
	// The template is filled with tid, so a token cannot claim one tenant in
	// tid and another in iss.
	claims["iss"] = f.issuer(V2, testTID)
	if _, err := c.ValidateIDToken(context.Background(), sign(t, rsaKey(t, 0), "kid-1", claims), o); !errors.Is(err, ErrInvalidIDToken) {
		t.Fatalf("mismatched iss/tid: %v", err)
	}
	// v1 on organizations: https://sts.windows.net/{tenantid}/.
	claims = f.idClaims(V1, clk.Now())
	claims["tid"], claims["iss"] = other, f.issuer(V1, other)
	o.Endpoint.Version = V1
	if _, err := c.ValidateIDToken(context.Background(), sign(t, rsaKey(t, 0), "kid-1", claims), o); err != nil {
		t.Fatalf("v1 any tenant: %v", err)
	}
}

// TestKeyRollover: a token signed by a key published after our fetch makes
// one refetch; further unknown kids within 5 minutes make none.
func TestKeyRollover(t *testing.T) {
	f, clk, c, o := afterRollover(t)
	ctx := context.Background()
	if _, err := c.ValidateIDToken(ctx, sign(t, rsaKey(t, 1), "kid-2", f.idClaims(V2, clk.Now())), o); err != nil {
		t.Fatalf("after rollover: %v", err)
	}
	if n := f.keyHits.Load(); n != 2 {
		t.Fatalf("keys fetched %d times, want 2", n)
	}
	// A forged kid right after: no fetch.
	clk.Advance(time.Minute)
	f.publish("kid-3", rsaKey(t, 2))
	if _, err := c.ValidateIDToken(ctx, sign(t, rsaKey(t, 2), "kid-3", f.idClaims(V2, clk.Now())), o); !errors.Is(err, ErrInvalidIDToken) {
		t.Fatalf("within 5 minutes: %v", err)
	}
	if n := f.keyHits.Load(); n != 2 {
		t.Fatalf("keys fetched %d times within 5 minutes", n)
	}
	clk.Advance(5 * time.Minute)
	if _, err := c.ValidateIDToken(ctx, sign(t, rsaKey(t, 2), "kid-3", f.idClaims(V2, clk.Now())), o); err != nil {
		t.Fatalf("after 5 minutes: %v", err)
	}
}

// TestKeyCacheRefreshAndLastKnownGood: hourly refresh happens in the
// background; a failing refresh keeps serving the last good keys.
func TestKeyCacheRefreshAndLastKnownGood(t *testing.T) {
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	ctx := context.Background()
	ep := f.endpoint(V2)
	m, err := c.Metadata(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if m.TenantID != testTID || m.Issuer != f.issuer(V2, testTID) || m.MSGraphHost != "graph.microsoft.com" || len(m.KeyIDs) != 1 {
		t.Fatalf("metadata %+v", m)
	}
	c.Metadata(ctx, ep)
	if f.metaHits.Load() != 1 {
		t.Fatalf("cached metadata refetched: %d", f.metaHits.Load())
	}

	f.fail.Store(true)
	clk.Advance(61 * time.Minute)
	m2, err := c.Metadata(ctx, ep) // stale: served, refresh starts
	if err != nil || m2 != m {
		t.Fatalf("stale entry not served: %v", err)
	}
	waitFor(t, func() bool { return f.metaHits.Load() == 2 })
	waitIdle(c)
	m3, err := c.Metadata(ctx, ep)
	if err != nil || m3 != m {
		t.Fatalf("last-known-good lost: %v", err)
	}
	if f.metaHits.Load() != 2 {
		t.Fatalf("failed refresh retried immediately: %d fetches", f.metaHits.Load())
	}
	raw := sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V2, clk.Now()))
	if _, err := c.ValidateIDToken(ctx, raw, opts(f, V2)); err != nil {
		t.Fatalf("validation during outage: %v", err)
	}

	f.fail.Store(false)
	clk.Advance(5 * time.Minute)
	c.Metadata(ctx, ep)
	waitFor(t, func() bool { return f.metaHits.Load() == 3 })
	waitIdle(c)
	if m4, _ := c.Metadata(ctx, ep); m4 == m {
		t.Fatal("refresh after recovery not applied")
	}
}

func TestKeyCacheColdFailure(t *testing.T) {
	f := newFakeEntra(t)
	f.fail.Store(true)
	c := newClock().client()
	_, err := c.Metadata(context.Background(), f.endpoint(V1))
	if !errors.Is(err, ClassUnavailable) {
		t.Fatalf("got %v", err)
	}
	ep := f.endpoint(V2)
	ep.Tenant = "nowhere.example"
	f.fail.Store(false)
	_, err = c.Metadata(context.Background(), ep)
	var e *Error
	if !errors.As(err, &e) || e.AADSTS != 90002 || e.Class != ClassAppMisconfigured {
		t.Fatalf("unknown tenant: %v", err)
	}
}

// TestKeyCacheSingleflight: a burst of cold validations makes one fetch, and
// a caller giving up does not fail the others.
func TestKeyCacheSingleflight(t *testing.T) {
	f := newFakeEntra(t)
	f.slow = make(chan struct{})
	clk := newClock()
	c := clk.client()
	raw := sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V2, clk.Now()))

	impatient, cancel := context.WithCancel(context.Background())
	cancel()
	// Like a token POST cut short, it is an unavailable upstream, not a
	// misconfigured connection.
	// Errorf, not Fatalf: the slow metadata answer below must be released.
	if _, err := c.ValidateIDToken(impatient, raw, opts(f, V2)); !errors.Is(err, context.Canceled) || !errors.Is(err, ClassUnavailable) {
		t.Errorf("cancelled caller: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			_, err := c.ValidateIDToken(context.Background(), raw, opts(f, V2))
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(f.slow)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.metaHits.Load() != 1 || f.keyHits.Load() != 1 {
		t.Fatalf("%d metadata and %d key fetches, want 1 each", f.metaHits.Load(), f.keyHits.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitIdle waits until no background fetch is running.
func waitIdle(c *Client) {
	for {
		c.keys.mu.Lock()
		busy := false
		for _, t := range c.keys.tenants {
			busy = busy || t.inflight != nil
		}
		c.keys.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKeyRolloverDuringOutage: Entra rolled its keys and its keys endpoint
// fails when we refetch. The token is not shown to be forged; the tenant
// keys are unavailable, which the broker answers as an outage (503), not
// as a misconfigured connection. Once Entra recovers, the new key works.
func TestKeyRolloverDuringOutage(t *testing.T) {
	f, clk, c, o := afterRollover(t)
	ctx := context.Background()
	f.fail.Store(true)
	for range 2 { // the refetch, then the cached failure
		_, err := c.ValidateIDToken(ctx, sign(t, rsaKey(t, 1), "kid-2", f.idClaims(V2, clk.Now())), o)
		if !errors.Is(err, ClassUnavailable) || errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("unknown kid while the keys cannot be fetched: %v", err)
		}
		clk.Advance(time.Minute)
	}
	if _, err := c.ValidateIDToken(ctx, sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V2, clk.Now())), o); err != nil {
		t.Fatalf("known kid during the outage: %v", err)
	}
	f.fail.Store(false)
	clk.Advance(5 * time.Minute)
	if _, err := c.ValidateIDToken(ctx, sign(t, rsaKey(t, 1), "kid-2", f.idClaims(V2, clk.Now())), o); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// afterRollover is a client that validated a token of kid-1 six minutes
// ago, against an Entra that has since published kid-2 (rsaKey 1).
func afterRollover(t *testing.T) (*fakeEntra, *clock, *Client, ValidateOptions) {
	t.Helper()
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	o := opts(f, V2)
	if _, err := c.ValidateIDToken(context.Background(), sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V2, clk.Now())), o); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Minute)
	f.publish("kid-2", rsaKey(t, 1))
	return f, clk, c, o
}

// unsigned re-encodes an id_token as Entra's v1 token endpoint sends it:
// header {"typ":"JWT","alg":"none"}, the same payload, no signature.
func unsigned(t testing.TB, header, signed string) string {
	t.Helper()
	parts := strings.Split(signed, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", signed)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1] + "."
}

// TestValidateIDTokenV1Unsigned: the v1 token endpoint answers with an
// unsigned id_token (alg none; AD v1-protocols-oauth-code.md, id_token "An
// unsigned JSON Web Token (JWT)"). Received from the token endpoint itself
// it is accepted, its claims checked like a signed one's; anywhere else,
// and from the v2 endpoint, it is refused.
func TestValidateIDTokenV1Unsigned(t *testing.T) {
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	ctx := context.Background()
	now := clk.Now()
	none := `{"typ":"JWT","alg":"none"}`
	tok := func(v Version, mod func(map[string]any)) string {
		claims := f.idClaims(v, now)
		if mod != nil {
			mod(claims)
		}
		return unsigned(t, none, sign(t, rsaKey(t, 0), "kid-1", claims))
	}
	direct := opts(f, V1)
	direct.FromTokenEndpoint = true
	claims, err := c.ValidateIDToken(ctx, tok(V1, nil), direct)
	if err != nil {
		t.Fatalf("v1 id_token from the token endpoint: %v", err)
	}
	if claims.TenantID != testTID || claims.UPN != "adele@contoso.onmicrosoft.com" || claims.Version != "1.0" {
		t.Fatalf("claims %+v", claims)
	}

	v2direct := opts(f, V2)
	v2direct.FromTokenEndpoint = true
	for _, tc := range []struct {
		name string
		raw  string
		o    ValidateOptions
		want string
	}{
		{"not from the token endpoint", tok(V1, nil), opts(f, V1), "unsigned"},
		{"v2 endpoint", tok(V2, nil), v2direct, "unsigned"},
		{"aud", tok(V1, func(c map[string]any) { c["aud"] = "someone-else" }), direct, "aud"},
		{"other tenant", tok(V1, func(c map[string]any) {
			c["tid"] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
			c["iss"] = "https://sts.windows.net/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/"
		}), direct, "iss"},
		{"expired", tok(V1, func(c map[string]any) { c["exp"] = now.Add(-6 * time.Minute).Unix() }), direct, "expired"},
		{"none with a signature", tok(V1, nil) + "c2ln", direct, ""},
		{"alg None", unsigned(t, `{"typ":"JWT","alg":"None"}`, sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V1, now))), direct, ""},
		{"crit", unsigned(t, `{"alg":"none","crit":["b64"],"b64":false}`, sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V1, now))), direct, ""},
	} {
		_, err := c.ValidateIDToken(ctx, tc.raw, tc.o)
		if !errors.Is(err, ErrInvalidIDToken) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want invalid id_token (%s)", tc.name, err, tc.want)
		}
	}
}

// TestKeyCacheStaleHerd: when the cached keys turn an hour old under a
// burst of 300 logins, one background refresh runs while every login is
// served the keys it has, without waiting for Entra.
func TestKeyCacheStaleHerd(t *testing.T) {
	f := newFakeEntra(t)
	clk := newClock()
	c := clk.client()
	if _, err := c.Metadata(context.Background(), f.endpoint(V2)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Minute)
	f.slow = make(chan struct{})
	raw := sign(t, rsaKey(t, 0), "kid-1", f.idClaims(V2, clk.Now()))
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for range 300 {
		wg.Go(func() {
			_, err := c.ValidateIDToken(context.Background(), raw, opts(f, V2))
			errs <- err
		})
	}
	wg.Wait() // the refresh is still held: no login waited for it
	close(f.slow)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(c)
	if n := f.metaHits.Load(); n != 2 {
		t.Fatalf("%d metadata fetches, want the first and one refresh", n)
	}
}
