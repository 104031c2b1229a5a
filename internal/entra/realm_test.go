package entra_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/internal/entra"
)

// TestUserRealm runs user realm discovery against the emulator: the account
// type of each kind of domain, one lookup per domain an hour, shared by
// concurrent logins, failures retried after a minute.
func TestUserRealm(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ep := e.endpoint(entra.V2)
	for _, tc := range []struct {
		user string
		want entra.AccountType
	}{
		{"alice@" + domain, entra.AccountManaged},
		{"grace@corp.fabrikam.com", entra.AccountFederated},
		{"someone@nowhere.example", entra.AccountUnknown},
	} {
		if got, err := e.c.UserRealm(ctx, ep, tc.user); err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.user, got, err, tc.want)
		}
	}
	if n := e.emu.Count("userrealm"); n != 3 {
		t.Fatalf("%d lookups for 3 domains", n)
	}

	// Another user of a known domain, in another case: from the cache.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if got, err := e.c.UserRealm(ctx, ep, fmt.Sprintf("user%d@CORP.fabrikam.com", i)); err != nil || got != entra.AccountFederated {
				t.Errorf("cached: %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := e.emu.Count("userrealm"); n != 3 {
		t.Fatalf("%d lookups after cached answers, want 3", n)
	}

	// Concurrent logins of a new domain share one lookup.
	e.emu.ResetCounters()
	if err := e.emu.SetFault("userrealm", emulator.Fault{Delay: emulator.Duration(200 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		wg.Go(func() {
			if got, err := e.c.UserRealm(ctx, ep, fmt.Sprintf("user%d@contoso.example", i)); err != nil || got != entra.AccountUnknown {
				t.Errorf("concurrent: %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	e.emu.ClearFaults()
	if n := e.emu.Count("userrealm"); n != 1 {
		t.Fatalf("%d lookups for 10 concurrent logins of one domain, want 1", n)
	}

	// An hour later the domain is looked up again.
	*e.now = e.now.Add(time.Hour + time.Second)
	if _, err := e.c.UserRealm(ctx, ep, "grace@corp.fabrikam.com"); err != nil || e.emu.Count("userrealm") != 2 {
		t.Fatalf("after an hour: %v, %d lookups", err, e.emu.Count("userrealm"))
	}

	// A failed lookup is an error, remembered for a minute.
	if err := e.emu.SetFault("userrealm", emulator.Fault{Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	var ee *entra.Error
	if _, err := e.c.UserRealm(ctx, ep, "x@failing.example"); !errors.As(err, &ee) || ee.StatusCode != 503 {
		t.Fatalf("failed lookup: %v", err)
	}
	if _, err := e.c.UserRealm(ctx, ep, "y@failing.example"); err == nil || e.emu.Count("userrealm") != 3 {
		t.Fatalf("failure not remembered: %v, %d lookups", err, e.emu.Count("userrealm"))
	}
	*e.now = e.now.Add(time.Minute + time.Second)
	if got, err := e.c.UserRealm(ctx, ep, "y@failing.example"); err != nil || got != entra.AccountUnknown {
		t.Fatalf("a minute later: %q, %v", got, err)
	}

	// No domain, no lookup.
	for _, u := range []string{"alice", "alice@", "a@b/c", "a@b?c"} {
		if _, err := e.c.UserRealm(ctx, ep, u); err == nil {
			t.Errorf("%q: looked up", u)
		}
	}
	if n := e.emu.Count("userrealm"); n != 4 {
		t.Fatalf("%d lookups, want 4", n)
	}
}

// TestUserRealmBudget: a caller inventing domains gets a bounded number of
// lookups, 20 at once and 10 a minute after; the rest are refused without
// calling Entra, and cached domains still answer.
func TestUserRealmBudget(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ep := e.endpoint(entra.V2)
	if _, err := e.c.UserRealm(ctx, ep, "grace@corp.fabrikam.com"); err != nil {
		t.Fatal(err)
	}
	for i := range 19 {
		if _, err := e.c.UserRealm(ctx, ep, fmt.Sprintf("x@d%d.example", i)); err != nil {
			t.Fatalf("lookup %d: %v", i+2, err)
		}
	}
	if _, err := e.c.UserRealm(ctx, ep, "x@one-too-many.example"); !errors.Is(err, entra.ErrRealmBudget) {
		t.Fatalf("21st domain: %v", err)
	}
	if got, err := e.c.UserRealm(ctx, ep, "heidi@corp.fabrikam.com"); err != nil || got != entra.AccountFederated {
		t.Fatalf("cached domain past the budget: %q, %v", got, err)
	}
	if n := e.emu.Count("userrealm"); n != 20 {
		t.Fatalf("%d lookups, want 20", n)
	}
	*e.now = e.now.Add(6 * time.Second)
	if _, err := e.c.UserRealm(ctx, ep, "x@one-too-many.example"); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
	if _, err := e.c.UserRealm(ctx, ep, "x@two-too-many.example"); !errors.Is(err, entra.ErrRealmBudget) {
		t.Fatalf("past the refill: %v", err)
	}
}

// TestUserRealmTimeout: a hung realm endpoint costs the login the realm
// timeout, not the upstream timeout, and the caller's own deadline wins.
func TestUserRealmTimeout(t *testing.T) {
	e := newEnv(t)
	e.c = entra.NewClient(entra.Options{RealmTimeout: 100 * time.Millisecond})
	if err := e.emu.SetFault("userrealm", emulator.Fault{Delay: emulator.Duration(5 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	ep := e.endpoint(entra.V2)
	start := time.Now()
	_, err := e.c.UserRealm(context.Background(), ep, "grace@corp.fabrikam.com")
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("hung lookup: %v after %v", err, time.Since(start))
	}
	// Errors are logged: they must not quote the URL, which names the user.
	if strings.Contains(err.Error(), "grace") {
		t.Fatalf("error names the user: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := e.c.UserRealm(ctx, ep, "x@other.example"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("caller's deadline: %v after %v", err, time.Since(start))
	}
}

// TestUserRealmUserNameStaysInItsSegment: whatever the user name holds,
// the lookup calls /common/userrealm/ with the name as one path segment
// and api-version=1.0 as the whole query: "/", "?", "#", "..", ";" or a
// percent-encoding in it cannot reach another endpoint or add a parameter.
// A name with two "@" is not looked up: its domain is not one.
func TestUserRealmUserNameStaysInItsSegment(t *testing.T) {
	dir, err := emulator.ParseDirectory([]byte(directory))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(dir, emulator.Options{KeyBits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ path, query string }
	var (
		mu   sync.Mutex
		reqs []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, seen{r.URL.EscapedPath(), r.URL.RawQuery})
		mu.Unlock()
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	emu.SetBaseURL(srv.URL)
	c := entra.NewClient(entra.Options{})
	ep := entra.Endpoint{Authority: srv.URL, Tenant: domain, Version: entra.V2}

	for i, local := range []string{"a/b", "../../../common/oauth2/v2.0/token", "x?api-version=2.1&y=", "x#frag", "a;b", "a%2F..%2Fb", "..", "%"} {
		user := fmt.Sprintf("%s@d%d.example", local, i)
		mu.Lock()
		reqs = nil
		mu.Unlock()
		if got, err := c.UserRealm(t.Context(), ep, user); err != nil || got != entra.AccountUnknown {
			t.Errorf("%q: %q, %v", user, got, err)
		}
		mu.Lock()
		if len(reqs) != 1 {
			t.Errorf("%q: requests %v, want one", user, reqs)
		} else {
			seg, ok := strings.CutPrefix(reqs[0].path, "/common/userrealm/")
			name, err := url.PathUnescape(seg)
			if !ok || strings.Contains(seg, "/") || err != nil || name != user || reqs[0].query != "api-version=1.0" {
				t.Errorf("%q: called %s?%s", user, reqs[0].path, reqs[0].query)
			}
		}
		mu.Unlock()
	}

	mu.Lock()
	reqs = nil
	mu.Unlock()
	for _, user := range []string{"x@evil.example@" + domain, "@" + domain} {
		if _, err := c.UserRealm(t.Context(), ep, user); err == nil {
			t.Errorf("%q: looked up", user)
		}
	}
	if len(reqs) != 0 {
		t.Errorf("names without one domain: requests %v", reqs)
	}
}

// TestUserRealmSharedLookupOutlivesACancelledCaller: logins of one domain
// share a lookup; the one that started it going away must not fail it
// for the others, nor start another.
func TestUserRealmSharedLookupOutlivesACancelledCaller(t *testing.T) {
	e := newEnv(t)
	if err := e.emu.SetFault("userrealm", emulator.Fault{Delay: emulator.Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	ep := e.endpoint(entra.V2)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := e.c.UserRealm(ctx, ep, "grace@corp.fabrikam.com")
		first <- err
	}()
	time.Sleep(50 * time.Millisecond)
	second := make(chan error, 1)
	var got entra.AccountType
	go func() {
		var err error
		got, err = e.c.UserRealm(context.Background(), ep, "heidi@corp.fabrikam.com")
		second <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if err := <-second; err != nil || got != entra.AccountFederated {
		t.Fatalf("the other caller: %q, %v", got, err)
	}
	if n := e.emu.Count("userrealm"); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
	// The answer is kept for the domain's next logins.
	if got, err := e.c.UserRealm(context.Background(), ep, "ivan@corp.fabrikam.com"); err != nil || got != entra.AccountFederated || e.emu.Count("userrealm") != 1 {
		t.Fatalf("after: %q, %v, %d lookups", got, err, e.emu.Count("userrealm"))
	}
}
