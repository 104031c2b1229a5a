package attack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func reason(err error) attack.Reason {
	var b *attack.Blocked
	if errors.As(err, &b) {
		return b.Reason
	}
	return ""
}

func newGuard(t *testing.T, backend string) (*attack.Guard, *clock) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return attack.New(storetest.Open(t, backend), c.now), c
}

// fail makes n attempts that the upstream refuses.
func fail(t *testing.T, g *attack.Guard, a attack.Attempt, n int) {
	t.Helper()
	for i := range n {
		tk, err := g.Check(t.Context(), a)
		if err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		if err := tk.Failed(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGuard(t *testing.T) {
	noBudget := json.RawMessage(`{"entra_lockout_threshold":0}`)
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			t.Run("brute force per identifier and IP", func(t *testing.T) {
				g, _ := newGuard(t, b)
				ctx := t.Context()
				a := attack.Attempt{Identifier: "Alice@Contoso.com", IP: "192.0.2.1", Connection: "c", Options: noBudget}
				fail(t, g, a, 10)
				if _, err := g.Check(ctx, a); reason(err) != attack.ReasonBruteForce {
					t.Fatalf("11th attempt: %v, want brute force block", err)
				}
				// Same user from another IP, and case variants, are separate / the same.
				other := a
				other.IP = "192.0.2.2"
				if _, err := g.Check(ctx, other); err != nil {
					t.Fatalf("other IP: %v", err)
				}
				a.Identifier = " alice@contoso.COM"
				if _, err := g.Check(ctx, a); reason(err) != attack.ReasonBruteForce {
					t.Fatalf("case variant: %v, want block", err)
				}
				blocks, err := g.Blocks(ctx, "alice@contoso.com", false, nil)
				if err != nil || len(blocks) != 1 || blocks[0].IP != "192.0.2.1" || blocks[0].Connection != "c" {
					t.Fatalf("Blocks = %+v, %v", blocks, err)
				}
				if err := g.Unblock(ctx, "", []string{"ALICE@contoso.com"}); err != nil {
					t.Fatal(err)
				}
				if _, err := g.Check(ctx, a); err != nil {
					t.Fatalf("after unblock: %v", err)
				}
			})
			// Auth0 blocks "that identifier from that IP": the user signing
			// in from elsewhere must not give a blocked address another
			// round of guesses; a success from the address itself resets it.
			t.Run("success elsewhere keeps the block, success there resets", func(t *testing.T) {
				g, _ := newGuard(t, b)
				ctx := t.Context()
				a := attack.Attempt{Identifier: "bob", IP: "192.0.2.1", Connection: "c", Options: noBudget}
				fail(t, g, a, 9)
				ok := a
				ok.IP = "192.0.2.50"
				tk, err := g.Check(ctx, ok)
				if err != nil {
					t.Fatal(err)
				}
				if err := tk.Succeeded(ctx); err != nil {
					t.Fatal(err)
				}
				tk, err = g.Check(ctx, a)
				if err != nil {
					t.Fatalf("the 10th attempt from 192.0.2.1: %v", err)
				}
				if err := tk.Failed(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := g.Check(ctx, a); reason(err) != attack.ReasonBruteForce {
					t.Fatalf("after a success from another address and a 10th failure: %v, want block", err)
				}
				fail(t, g, attack.Attempt{Identifier: "bob", IP: "192.0.2.2", Connection: "c", Options: noBudget}, 9)
				there := a
				there.IP = "192.0.2.2"
				if tk, err = g.Check(ctx, there); err != nil {
					t.Fatal(err)
				}
				if err := tk.Succeeded(ctx); err != nil {
					t.Fatal(err)
				}
				fail(t, g, there, 9)
				if _, err := g.Check(ctx, there); err != nil {
					t.Fatalf("9 failures after a success from the same address: %v, want the count reset", err)
				}
			})
			t.Run("settings: mode, allowlist, disabled", func(t *testing.T) {
				g, _ := newGuard(t, b)
				ctx := t.Context()
				bf := attack.DefaultBruteForce()
				bf.Mode, bf.MaxAttempts, bf.Allowlist = attack.ModePerIdentifier, 2, []string{"198.51.100.0/24"}
				if err := setBruteForce(ctx, g, bf); err != nil {
					t.Fatal(err)
				}
				a := attack.Attempt{Identifier: "carol", IP: "192.0.2.1", Connection: "c", Options: noBudget}
				fail(t, g, a, 2)
				a.IP = "192.0.2.99"
				if _, err := g.Check(ctx, a); reason(err) != attack.ReasonBruteForce {
					t.Fatalf("per identifier: another IP: %v, want block", err)
				}
				a.IP = "198.51.100.4"
				if _, err := g.Check(ctx, a); err != nil {
					t.Fatalf("allowlisted IP: %v", err)
				}
				if blocks, _ := g.Blocks(ctx, "carol", false, nil); len(blocks) != 1 || blocks[0].IP != "" {
					t.Fatalf("Blocks = %+v, want one without ip", blocks)
				}
				bf.Enabled = false
				if err := setBruteForce(ctx, g, bf); err != nil {
					t.Fatal(err)
				}
				a.IP = "192.0.2.1"
				if _, err := g.Check(ctx, a); err != nil {
					t.Fatalf("disabled: %v", err)
				}
				if blocks, _ := g.Blocks(ctx, "carol", true, nil); len(blocks) != 0 {
					t.Fatalf("Blocks respecting enablement = %+v, want none", blocks)
				}
			})
			t.Run("IPv6 counted by its /64, allowlist on the address", func(t *testing.T) {
				g, _ := newGuard(t, b)
				ctx := t.Context()
				bf := attack.DefaultBruteForce()
				bf.MaxAttempts, bf.Allowlist = 3, []string{"2001:db8::ff/128"}
				if err := setBruteForce(ctx, g, bf); err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					fail(t, g, attack.Attempt{Identifier: "heidi", IP: fmt.Sprintf("2001:db8::%x", i+1), Connection: "c", Options: noBudget}, 1)
				}
				a := attack.Attempt{Identifier: "heidi", IP: "2001:db8::ffff:1", Connection: "c", Options: noBudget}
				if _, err := g.Check(ctx, a); reason(err) != attack.ReasonBruteForce {
					t.Fatalf("a new address of the /64: %v, want block", err)
				}
				if blocks, _ := g.Blocks(ctx, "heidi", false, nil); len(blocks) != 1 || blocks[0].IP != "2001:db8::/64" {
					t.Fatalf("Blocks = %+v, want the /64", blocks)
				}
				a.IP = "2001:db8:0:1::1"
				if _, err := g.Check(ctx, a); err != nil {
					t.Fatalf("another /64: %v", err)
				}
				a.IP = "2001:db8::ff"
				if _, err := g.Check(ctx, a); err != nil {
					t.Fatalf("allowlisted address in the blocked /64: %v", err)
				}
				fail(t, g, attack.Attempt{Identifier: "ivan", IP: "192.0.2.1", Connection: "c", Options: noBudget}, 3)
				if _, err := g.Check(ctx, attack.Attempt{Identifier: "ivan", IP: "::ffff:192.0.2.1", Connection: "c", Options: noBudget}); reason(err) != attack.ReasonBruteForce {
					t.Fatalf("IPv4-mapped address of a blocked IPv4: %v, want block", err)
				}
				if _, err := g.Check(ctx, attack.Attempt{Identifier: "ivan", IP: "192.0.2.2", Connection: "c", Options: noBudget}); err != nil {
					t.Fatalf("IPv4 is counted by address: %v", err)
				}
			})
			t.Run("upstream budget across IPs", func(t *testing.T) {
				g, clk := newGuard(t, b)
				ctx := t.Context()
				for i := range 9 {
					a := attack.Attempt{Identifier: "dave", IP: "203.0.113." + string(rune('1'+i)), Connection: "c"}
					fail(t, g, a, 1)
				}
				a := attack.Attempt{Identifier: "dave", IP: "203.0.113.200", Connection: "c"}
				if _, err := g.Check(ctx, a); reason(err) != attack.ReasonUpstreamBudget {
					t.Fatalf("10th failure across IPs: %v, want upstream budget block", err)
				}
				if blocks, _ := g.Blocks(ctx, "dave", false, nil); len(blocks) != 1 || blocks[0].IP != "" {
					t.Fatalf("Blocks = %+v", blocks)
				}
				clk.add(attack.DefaultUpstreamWindow + time.Second)
				if _, err := g.Check(ctx, a); err != nil {
					t.Fatalf("after the window: %v", err)
				}
			})
			t.Run("upstream budget per connection policy", func(t *testing.T) {
				g, _ := newGuard(t, b)
				a := attack.Attempt{Identifier: "erin", IP: "192.0.2.1", Connection: "c", Options: json.RawMessage(`{"entra_lockout_threshold":3}`)}
				fail(t, g, a, 2)
				if _, err := g.Check(t.Context(), a); reason(err) != attack.ReasonUpstreamBudget {
					t.Fatalf("3rd: %v, want upstream budget block", err)
				}
			})
			t.Run("inconclusive gives back", func(t *testing.T) {
				g, _ := newGuard(t, b)
				ctx := t.Context()
				a := attack.Attempt{Identifier: "frank", IP: "192.0.2.1", Connection: "c"}
				for range 30 {
					tk, err := g.Check(ctx, a)
					if err != nil {
						t.Fatal(err)
					}
					if err := tk.Inconclusive(ctx); err != nil {
						t.Fatal(err)
					}
				}
			})
			t.Run("suspicious IP throttling", func(t *testing.T) {
				g, clk := newGuard(t, b)
				ctx := t.Context()
				sit := attack.DefaultSuspiciousIP()
				sit.Stage[attack.StagePreLogin] = attack.Stage{MaxAttempts: 3, Rate: 60000}
				if err := setSuspiciousIP(ctx, g, sit); err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					a := attack.Attempt{Identifier: "u" + string(rune('a'+i)), IP: "192.0.2.9", Connection: "c"}
					fail(t, g, a, 1)
				}
				_, err := g.Check(ctx, attack.Attempt{Identifier: "ux", IP: "192.0.2.9", Connection: "c"})
				var bl *attack.Blocked
				if !errors.As(err, &bl) || bl.Reason != attack.ReasonSuspiciousIP || bl.Limit != 3 || bl.Remaining != 0 ||
					!bl.Reset.Equal(clk.now().Add(time.Minute)) {
					t.Fatalf("4th failure from the IP: %+v (%v)", bl, err)
				}
				clk.add(time.Minute)
				if _, err := g.Check(ctx, attack.Attempt{Identifier: "ux", IP: "192.0.2.9", Connection: "c"}); err != nil {
					t.Fatalf("after one refill: %v", err)
				}
			})
		})
	}
}

// TestGuardParallel: 50 parallel wrong passwords get at most max_attempts
// places, whatever the interleaving.
func TestGuardParallel(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			g, _ := newGuard(t, b)
			var (
				wg       sync.WaitGroup
				upstream atomic.Int32
			)
			for range 50 {
				wg.Go(func() {
					tk, err := g.Check(context.Background(), attack.Attempt{Identifier: "grace", IP: "192.0.2.1", Connection: "c"})
					if err != nil {
						if reason(err) == "" {
							t.Error(err)
						}
						return
					}
					upstream.Add(1)
					_ = tk.Failed(context.Background())
				})
			}
			wg.Wait()
			if n := upstream.Load(); n != 9 {
				t.Fatalf("%d attempts went upstream, want 9 (the upstream budget)", n)
			}
		})
	}
}

// TestUpstreamPolicy: each lockout option is read on its own, so a stored
// value of the wrong type resets only itself; durations past 30 days count
// as 30 days.
func TestUpstreamPolicy(t *testing.T) {
	memo := attack.New(nil, nil)
	for _, c := range []struct {
		options   string
		threshold int
		window    time.Duration
	}{
		{``, 10, time.Minute},
		{`{}`, 10, time.Minute},
		{`{"entra_lockout_threshold":0,"entra_lockout_duration_seconds":300}`, 0, 5 * time.Minute},
		{`{"entra_lockout_threshold":"5","entra_lockout_duration_seconds":300}`, 10, 5 * time.Minute},
		{`{"entra_lockout_threshold":5,"entra_lockout_duration_seconds":2.5}`, 5, time.Minute},
		{`{"entra_lockout_threshold":-1,"entra_lockout_duration_seconds":true}`, 10, time.Minute},
		{`{"entra_lockout_threshold":{},"entra_lockout_duration_seconds":-60}`, 10, time.Minute},
		{`{"entra_lockout_threshold":null,"entra_lockout_duration_seconds":null}`, 10, time.Minute},
		{`{"entra_lockout_threshold":3,"entra_lockout_duration_seconds":100000000000000000000}`, 3, 30 * 24 * time.Hour},
		{`{"ENTRA_LOCKOUT_THRESHOLD":3}`, 10, time.Minute},
	} {
		th, w := attack.UpstreamPolicy(json.RawMessage(c.options))
		if th != c.threshold || w != c.window {
			t.Errorf("UpstreamPolicy(%s) = %d, %v; want %d, %v", c.options, th, w, c.threshold, c.window)
		}
		// Check reads it through the guard's memo: the same, the first
		// time and the next.
		for range 2 {
			if th, w := memo.Policy(json.RawMessage(c.options)); th != c.threshold || w != c.window {
				t.Errorf("memoized policy of %s = %d, %v; want %d, %v", c.options, th, w, c.threshold, c.window)
			}
		}
	}
	// Past its bound the memo starts again, and still answers right.
	for i := range attack.MaxPolicies + 1 {
		options := fmt.Sprintf(`{"entra_lockout_threshold":%d}`, i)
		if th, _ := memo.Policy(json.RawMessage(options)); th != i {
			t.Fatalf("memoized threshold of %s = %d", options, th)
		}
	}
	if th, w := memo.Policy(json.RawMessage(`{"entra_lockout_threshold":3,"entra_lockout_duration_seconds":60}`)); th != 3 || w != time.Minute {
		t.Errorf("memoized policy after the memo started again = %d, %v", th, w)
	}
}

// setBruteForce stores bf in place of the stored settings.
func setBruteForce(ctx context.Context, g *attack.Guard, bf attack.BruteForce) error {
	_, err := g.UpdateBruteForce(ctx, func(cur *attack.BruteForce) error { *cur = bf; return nil })
	return err
}

// setSuspiciousIP stores sit in place of the stored settings.
func setSuspiciousIP(ctx context.Context, g *attack.Guard, sit attack.SuspiciousIP) error {
	_, err := g.UpdateSuspiciousIP(ctx, func(cur *attack.SuspiciousIP) error { *cur = sit; return nil })
	return err
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{" Alice@Contoso.COM\t", "alice@contoso.com"},
		{"\u00a0alice@contoso.com\u3000", "alice@contoso.com"},
		{"al\u0131ce@conto\u017fo.com", "alice@contoso.com"},
		{"AL\u0130CE@contoso.com", "alice@contoso.com"},
		{"\u212aate@contoso.com", "kate@contoso.com"},
		// Look-alikes of other scripts name other accounts.
		{"\u0430lice@contoso.com", "\u0430lice@contoso.com"},
		{"J\u00dcRGEN@x", "j\u00fcrgen@x"},
	} {
		if got := attack.Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
