package attack

import (
	"context"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Block is one entry of Auth0's user-blocks blocked_for list. IP is empty
// for blocks across all IPs (count_per_identifier and the upstream
// budget).
type Block struct {
	Identifier string `json:"identifier"`
	IP         string `json:"ip,omitempty"`
	Connection string `json:"connection"`
}

// OptionsLookup returns a connection's options by name, for the upstream
// budget of each block; nil options mean the defaults.
type OptionsLookup func(ctx context.Context, connection string) ([]byte, error)

// Blocks lists the identifier's current blocks. With respectEnablement
// (Auth0's consider_brute_force_enablement), brute-force blocks are left
// out unless brute-force protection is on and configured to block (the
// "block" shield): without it, no login is refused.
func (g *Guard) Blocks(ctx context.Context, identifier string, respectEnablement bool, options OptionsLookup) ([]Block, error) {
	bf, err := g.BruteForce(ctx)
	if err != nil {
		return nil, err
	}
	now := g.now()
	counters, err := g.store.ListAttackCounters(ctx, Normalize(identifier), now.Add(-bruteForceExpiry))
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	out := []Block{}
	for _, c := range counters {
		switch c.Kind {
		case store.AttackBruteForce:
			if c.Attempts < bf.MaxAttempts || (respectEnablement && (!bf.Enabled || !slices.Contains(bf.Shields, "block"))) {
				continue
			}
		case store.AttackUpstreamBudget:
			var opts []byte
			if options != nil {
				if opts, err = options(ctx, c.Connection); err != nil {
					return nil, err
				}
			}
			threshold, window := UpstreamPolicy(opts)
			if threshold <= 1 || c.Attempts < threshold-1 || c.UpdatedAt.Before(now.Add(-window)) {
				continue
			}
		default:
			continue
		}
		out = append(out, Block{Identifier: c.Identifier, IP: c.IP, Connection: c.Connection})
	}
	return out, nil
}

// Unblock lifts every block and clears every count of the identifiers on
// connection, or on every connection when connection is "".
func (g *Guard) Unblock(ctx context.Context, connection string, identifiers []string) error {
	for _, id := range identifiers {
		if id = Normalize(id); id == "" {
			continue
		}
		if _, err := g.store.DeleteAttackCounters(ctx, connection, id); err != nil {
			return fmt.Errorf("attack: %w", err)
		}
	}
	return nil
}

// IPBlocked reports whether suspicious IP throttling refuses ip's next
// login now (Auth0's anomaly IP blocks): its pre-login bucket is empty
// and the throttle applies to it.
func (g *Guard) IPBlocked(ctx context.Context, ip string) (bool, error) {
	sit, err := g.SuspiciousIP(ctx)
	if err != nil {
		return false, err
	}
	st, ok := sit.Stage[StagePreLogin]
	if !ok || !sit.Enabled || !slices.Contains(sit.Shields, "block") || allowed(sit.Allowlist, ip) {
		return false, nil
	}
	tat, err := g.store.AttackBucket(ctx, StagePreLogin+":"+ipKey(ip))
	if err != nil {
		return false, fmt.Errorf("attack: %w", err)
	}
	if tat.IsZero() {
		return false, nil
	}
	// The take's own test (store.TakeToken): one more interval would run
	// past the burst.
	step := st.Rate
	return tat.UnixMilli()+step > g.now().UnixMilli()+int64(st.MaxAttempts)*step, nil
}

// UnblockIP refills ip's pre-login bucket, lifting its suspicious IP
// throttling; it reports whether there was a bucket to refill.
func (g *Guard) UnblockIP(ctx context.Context, ip string) (bool, error) {
	ok, err := g.store.DeleteAttackBucket(ctx, StagePreLogin+":"+ipKey(ip))
	if err != nil {
		return false, fmt.Errorf("attack: %w", err)
	}
	return ok, nil
}
