package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
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
	// In name order, so that a PATCH with several bad stages is always
	// answered with the same one.
	for _, name := range slices.Sorted(maps.Keys(s.Stage)) {
		st := s.Stage[name]
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

// SettingError is a settings value that is refused, on Property (e.g.
// "allowlist[2]").
type SettingError struct {
	Property string
	Reason   string
}

func (e *SettingError) Error() string { return e.Property + ": " + e.Reason }

// maxAllowlist is Auth0's limit on allowlist entries.
const maxAllowlist = 100

// checkAllowlist accepts what Auth0 documents for allowlist entries:
// IPv4 or IPv6 addresses, or ranges in CIDR notation (Management API
// schema UpdateBruteForceSettingsResponseContent: items of format ipv4,
// cidr, ipv6 or ipv6_cidr; https://auth0.com/docs/secure/attack-protection/brute-force-protection,
// "IP AllowList"). Those formats have no surrounding white space and no
// IPv6 zone (%eth0), so neither is taken: the entry would be stored and,
// for white space, never match.
func checkAllowlist(list []string) error {
	if len(list) > maxAllowlist {
		return fmt.Errorf("allowlist may hold at most %d entries", maxAllowlist)
	}
	for i, e := range list {
		prop := fmt.Sprintf("allowlist[%d]", i)
		switch {
		case strings.TrimSpace(e) != e:
			return &SettingError{prop, fmt.Sprintf("%q has white space around it; send each address or range as an entry of its own, without spaces", e)}
		case strings.Contains(e, "%"):
			return &SettingError{prop, fmt.Sprintf("%q has an IPv6 zone; write the address or range without %%zone", e)}
		}
		if _, err := parsePrefix(e); err != nil {
			return &SettingError{prop, fmt.Sprintf("%q is not an IP address or CIDR range", e)}
		}
	}
	return nil
}

// parsePrefix reads an allowlist entry as the range it stands for, in the
// form allowed compares client addresses in: host bits cleared (10.1.2.3/8
// is 10.0.0.0/8), and IPv4-mapped IPv6 addresses and ranges as IPv4 ones
// (::ffff:10.0.0.0/104 is 10.0.0.0/8), since client addresses are unmapped.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 128-32 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-(128-32))
	}
	return p.Masked(), nil
}

// allowed reports whether ip is in the allowlist. A client address's
// zone says only which local interface it came in on.
func allowed(list []string, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
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

// UpdateBruteForce applies change to the stored settings (or the
// defaults), then validates and stores them, and returns them. It stores
// them only over the settings it read, else store.ErrConflict: the
// caller may try again, and a write made meanwhile is never undone. The
// guard must read the store itself, not a cache of it, or it may keep
// reading what is no longer stored.
func (g *Guard) UpdateBruteForce(ctx context.Context, change func(*BruteForce) error) (BruteForce, error) {
	return updateSettings(ctx, g, BruteForceName, DefaultBruteForce(), change)
}

// UpdateSuspiciousIP is UpdateBruteForce for the suspicious IP
// throttling settings.
func (g *Guard) UpdateSuspiciousIP(ctx context.Context, change func(*SuspiciousIP) error) (SuspiciousIP, error) {
	return updateSettings(ctx, g, SuspiciousIPName, DefaultSuspiciousIP(), change)
}

// updateSettings is the Update of the settings stored under name, from
// defaults when none are.
func updateSettings[T any, P interface {
	*T
	Validate() error
}](ctx context.Context, g *Guard, name string, defaults T, change func(*T) error) (T, error) {
	v := defaults
	err := g.update(ctx, name, &v, func() error {
		if err := change(&v); err != nil {
			return err
		}
		return P(&v).Validate()
	})
	return v, err
}

func (g *Guard) load(ctx context.Context, name string, v any) error {
	_, err := g.loadRaw(ctx, name, v)
	return err
}

// loadRaw reads the document name into v, left as is when none is
// stored, and returns it as stored.
func (g *Guard) loadRaw(ctx context.Context, name string, v any) (json.RawMessage, error) {
	raw, err := g.store.GetAttackSettings(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("attack: %s: %w", name, err)
	}
	if raw == nil {
		return nil, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("attack: %s: %w", name, err)
	}
	return raw, nil
}

// update reads the document name into v, runs change on it and stores v
// over the document read.
func (g *Guard) update(ctx context.Context, name string, v any, change func() error) error {
	read, err := g.loadRaw(ctx, name, v)
	if err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("attack: %s: %w", name, err)
	}
	if err := g.store.PutAttackSettings(ctx, name, read, raw); err != nil {
		return fmt.Errorf("attack: %s: %w", name, err)
	}
	return nil
}
