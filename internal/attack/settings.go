package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Settings document names, as in the Management API paths.
const (
	BruteForceName   = "brute-force-protection"
	SuspiciousIPName = "suspicious-ip-throttling"
)

// Brute-force modes (Auth0 BruteForceProtectionModeEnum).
const (
	ModePerIdentifierAndIP = "count_per_identifier_and_ip"
	ModePerIdentifier      = "count_per_identifier"
)

// StagePreLogin is the suspicious IP throttling stage of logins.
const StagePreLogin = "pre-login"

// BruteForce is Auth0's brute-force-protection settings object.
type BruteForce struct {
	Enabled     bool     `json:"enabled"`
	Shields     []string `json:"shields"`
	Allowlist   []string `json:"allowlist"`
	Mode        string   `json:"mode"`
	MaxAttempts int      `json:"max_attempts"`
}

// SuspiciousIP is Auth0's suspicious-ip-throttling settings object.
type SuspiciousIP struct {
	Enabled   bool             `json:"enabled"`
	Shields   []string         `json:"shields"`
	Allowlist []string         `json:"allowlist"`
	Stage     map[string]Stage `json:"stage"`
}

// Stage is one throttled stage: a bucket of MaxAttempts that regains one
// attempt every Rate milliseconds.
type Stage struct {
	MaxAttempts int   `json:"max_attempts"`
	Rate        int64 `json:"rate"`
}

// DefaultBruteForce is Auth0's default: on, 10 attempts per identifier
// and IP.
func DefaultBruteForce() BruteForce {
	return BruteForce{Enabled: true, Shields: []string{"block", "user_notification"}, Allowlist: []string{},
		Mode: ModePerIdentifierAndIP, MaxAttempts: 10}
}

// DefaultSuspiciousIP is Auth0's default: on, 100 failed logins per IP,
// one more every 864 s (100 a day).
func DefaultSuspiciousIP() SuspiciousIP {
	return SuspiciousIP{Enabled: true, Shields: []string{"admin_notification", "block"}, Allowlist: []string{},
		Stage: map[string]Stage{
			StagePreLogin:           {MaxAttempts: 100, Rate: 864000},
			"pre-user-registration": {MaxAttempts: 50, Rate: 1200},
		}}
}

// Validate checks the values Auth0 checks; the message names the property.
func (b *BruteForce) Validate() error {
	if err := checkShields("shields", b.Shields, "block", "user_notification"); err != nil {
		return err
	}
	if b.Mode != ModePerIdentifierAndIP && b.Mode != ModePerIdentifier {
		return fmt.Errorf("mode must be %s or %s", ModePerIdentifierAndIP, ModePerIdentifier)
	}
	if b.MaxAttempts < 1 || b.MaxAttempts > 100 {
		return fmt.Errorf("max_attempts must be between 1 and 100")
	}
	return checkAllowlist(b.Allowlist)
}

// Validate checks the values Auth0 checks; the message names the property.
func (s *SuspiciousIP) Validate() error {
	if err := checkShields("shields", s.Shields, "block", "admin_notification"); err != nil {
		return err
	}
	for name, st := range s.Stage {
		if name != StagePreLogin && name != "pre-user-registration" && name != "pre-custom-token-exchange" {
			return fmt.Errorf("stage.%s is not a known stage", name)
		}
		if st.MaxAttempts < 1 || st.MaxAttempts > 100000 {
			return fmt.Errorf("stage.%s.max_attempts must be between 1 and 100000", name)
		}
		if st.Rate < 1 || st.Rate > 86400000 {
			return fmt.Errorf("stage.%s.rate must be between 1 and 86400000 (milliseconds)", name)
		}
	}
	return checkAllowlist(s.Allowlist)
}

func checkShields(prop string, got []string, allowed ...string) error {
	for _, s := range got {
		if !slices.Contains(allowed, s) {
			return fmt.Errorf("%s may contain only %s", prop, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// maxAllowlist is Auth0's limit on allowlist entries.
const maxAllowlist = 100

func checkAllowlist(list []string) error {
	if len(list) > maxAllowlist {
		return fmt.Errorf("allowlist may hold at most %d entries", maxAllowlist)
	}
	for _, e := range list {
		if _, err := parsePrefix(e); err != nil {
			return fmt.Errorf("allowlist: %q is not an IP address or CIDR range", e)
		}
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// allowed reports whether ip is in the allowlist.
func allowed(list []string, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, e := range list {
		if p, err := parsePrefix(e); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

// BruteForce returns the stored settings, or the defaults.
func (g *Guard) BruteForce(ctx context.Context) (BruteForce, error) {
	b := DefaultBruteForce()
	return b, g.load(ctx, BruteForceName, &b)
}

// SuspiciousIP returns the stored settings, or the defaults.
func (g *Guard) SuspiciousIP(ctx context.Context) (SuspiciousIP, error) {
	s := DefaultSuspiciousIP()
	return s, g.load(ctx, SuspiciousIPName, &s)
}

// SetBruteForce validates and stores b.
func (g *Guard) SetBruteForce(ctx context.Context, b BruteForce) error {
	if err := b.Validate(); err != nil {
		return err
	}
	return g.save(ctx, BruteForceName, b)
}

// SetSuspiciousIP validates and stores s.
func (g *Guard) SetSuspiciousIP(ctx context.Context, s SuspiciousIP) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return g.save(ctx, SuspiciousIPName, s)
}

func (g *Guard) load(ctx context.Context, name string, v any) error {
	raw, err := g.store.GetAttackSettings(ctx, name)
	if err != nil {
		return fmt.Errorf("attack: %s: %w", name, err)
	}
	if raw == nil {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("attack: %s: %w", name, err)
	}
	return nil
}

func (g *Guard) save(ctx context.Context, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("attack: %s: %w", name, err)
	}
	if err := g.store.PutAttackSettings(ctx, name, raw); err != nil {
		return fmt.Errorf("attack: %s: %w", name, err)
	}
	return nil
}
