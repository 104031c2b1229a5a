package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store is what the guard keeps its counters and settings in.
type Store interface {
	store.AttackStore
}

// bruteForceExpiry is how long a brute-force block lasts after the last
// failed attempt (Auth0: 30 days).
const bruteForceExpiry = 30 * 24 * time.Hour

// Upstream lockout defaults: Entra ID Smart Lockout locks an account
// after 10 failed sign-ins, for 60 seconds at first.
const (
	DefaultUpstreamThreshold = 10
	DefaultUpstreamWindow    = 60 * time.Second
)

// Connection options that describe the upstream tenant's lockout policy.
const (
	OptionLockoutThreshold = "entra_lockout_threshold"
	OptionLockoutDuration  = "entra_lockout_duration_seconds"
)

// Reason says which control refused an attempt.
type Reason string

const (
	ReasonBruteForce     Reason = "brute_force"
	ReasonSuspiciousIP   Reason = "suspicious_ip"
	ReasonUpstreamBudget Reason = "upstream_lockout_budget"
)

// Blocked is the error of a refused attempt. Limit, Remaining and Reset
// are the rate-limit headers of ReasonSuspiciousIP.
type Blocked struct {
	Reason    Reason
	Limit     int
	Remaining int
	Reset     time.Time
}

func (b *Blocked) Error() string { return "attack: attempt refused: " + string(b.Reason) }

// Guard decides whether a login attempt may go upstream.
type Guard struct {
	store    Store
	now      func() time.Time
	policies policyMemo
}

// policyMemo remembers UpstreamPolicy by the options' text: every login
// reads its connection's options, which change only when an administrator
// saves them, and parsing them each time cost ~12 µs and 74 allocations
// of a login's CPU.
type policyMemo struct {
	mu sync.Mutex
	m  map[string]upstreamPolicy
}

type upstreamPolicy struct {
	threshold int
	window    time.Duration
}

// maxPolicies bounds the memo; past it, the memo starts again.
const maxPolicies = 256

func (pm *policyMemo) get(options json.RawMessage) (int, time.Duration) {
	pm.mu.Lock()
	p, ok := pm.m[string(options)]
	pm.mu.Unlock()
	if ok {
		return p.threshold, p.window
	}
	p.threshold, p.window = UpstreamPolicy(options)
	pm.mu.Lock()
	if pm.m == nil || len(pm.m) >= maxPolicies {
		pm.m = make(map[string]upstreamPolicy)
	}
	pm.m[string(options)] = p
	pm.mu.Unlock()
	return p.threshold, p.window
}

// New returns a Guard on st; now is time.Now when nil.
func New(st Store, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{store: st, now: now}
}

// Attempt is one password login about to go upstream.
type Attempt struct {
	// Identifier is the username as the user typed it.
	Identifier string
	// IP is the end user's address (ClientIP).
	IP string
	// Connection is the connection's name; Options its options JSON,
	// which may set the upstream lockout policy.
	Connection string
	Options    json.RawMessage
	// WithUsers asks the take to read, in its own round trip where the
	// store can (store.LoginTake.Users), the connection's users whose
	// email is the identifier: Ticket.Users.
	WithUsers bool
}

// Ticket holds what Check took, to be settled by exactly one of Failed,
// Succeeded or Inconclusive.
type Ticket struct {
	g          *Guard
	connection string
	identifier string
	ip         string
	counters   []store.AttackCounter
	bucket     string
	interval   time.Duration
	users      []*store.User
}

// Users are the users Attempt.WithUsers asked for, as they were when the
// attempt was admitted, or nil when the store did not read them.
func (t *Ticket) Users() []*store.User {
	if t == nil {
		return nil
	}
	return t.users
}

// Normalize is the form identifiers are counted and unblocked under:
// trimmed and case-folded. Non-ASCII text is upper-cased before it is
// lower-cased, so that each rune whose upper case is an ASCII letter
// ("ı" and "ſ", which lower-casing keeps) folds with it: a directory that
// compares names by their upper case, as .NET's OrdinalIgnoreCase does,
// takes "alıce" for "alice", and counting it apart would give a guesser a
// fresh count for every such spelling. The folding only ever joins what
// lower-casing joins, never splits it.
func Normalize(identifier string) string {
	s := strings.TrimSpace(identifier)
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return strings.ToLower(strings.ToUpper(s))
		}
	}
	return strings.ToLower(s)
}

// Check takes one place from every control that applies, in order:
// suspicious IP throttling, brute force, then the upstream budget, all in
// one store write. It returns *Blocked when a control refuses; what was
// taken for the refused attempt is then settled by the store.
func (g *Guard) Check(ctx context.Context, a Attempt) (*Ticket, error) {
	sit, err := g.SuspiciousIP(ctx)
	if err != nil {
		return nil, err
	}
	bf, err := g.BruteForce(ctx)
	if err != nil {
		return nil, err
	}
	now := g.now()
	t := &Ticket{g: g, connection: a.Connection, identifier: Normalize(a.Identifier)}
	take := store.LoginTake{Now: now}
	if a.WithUsers {
		take.Users = &store.UsersByEmail{Connection: a.Connection, Email: t.identifier}
	}
	var limit int
	ip := ipKey(a.IP)
	t.ip = ip
	if st, ok := sit.Stage[StagePreLogin]; ok && sit.Enabled && slices.Contains(sit.Shields, "block") && !allowed(sit.Allowlist, a.IP) {
		limit = st.MaxAttempts
		take.Bucket, take.Burst, take.Interval = StagePreLogin+":"+ip, st.MaxAttempts, time.Duration(st.Rate)*time.Millisecond
	}
	if bf.Enabled && !allowed(bf.Allowlist, a.IP) {
		c := store.AttackCounter{Kind: store.AttackBruteForce, Connection: a.Connection, Identifier: t.identifier, IP: ip}
		if bf.Mode == ModePerIdentifier {
			c.IP = ""
		}
		take.Counters = append(take.Counters, store.CounterTake{Counter: c, Limit: bf.MaxAttempts,
			ExpireBefore: now.Add(-bruteForceExpiry), Block: slices.Contains(bf.Shields, "block")})
	}
	if threshold, window := g.policies.get(a.Options); threshold > 1 {
		// Nothing goes upstream when the budget refuses: the brute-force
		// count comes back, but the IP's token stays taken, as for any
		// refused attempt.
		c := store.AttackCounter{Kind: store.AttackUpstreamBudget, Connection: a.Connection, Identifier: t.identifier}
		take.Counters = append(take.Counters, store.CounterTake{Counter: c, Limit: threshold - 1,
			ExpireBefore: now.Add(-window), Block: true})
	}
	got, err := g.store.TakeLogin(ctx, take)
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	if got.TokenRefused {
		// A throttled attempt is itself a failure: the bucket stays empty.
		return nil, &Blocked{Reason: ReasonSuspiciousIP, Limit: limit, Remaining: got.Left, Reset: got.Next}
	}
	if got.Refused >= 0 {
		if take.Counters[got.Refused].Counter.Kind == store.AttackBruteForce {
			return nil, &Blocked{Reason: ReasonBruteForce}
		}
		return nil, &Blocked{Reason: ReasonUpstreamBudget}
	}
	t.bucket, t.interval, t.users = take.Bucket, take.Interval, got.Users
	for i, counted := range got.Counted {
		if counted {
			t.counters = append(t.counters, take.Counters[i].Counter)
		}
	}
	return t, nil
}

// ipKey is what an address is counted under: an IPv6 address's /64,
// since a single host commonly holds a whole /64 and could take a new
// address for every attempt; an IPv4 address (IPv4-mapped ones included)
// as it is. Allowlists still match the address itself.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap().WithZone(""); a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// Prune deletes one bounded batch of expired blocks (counters idle past
// the brute-force expiry) and refilled IP buckets, so that rows of
// identifiers and IPs never seen again do not pile up. It reports how many
// rows went; 0 means nothing is left. The server runs it
// in the background, never on a login's path.
func (g *Guard) Prune(ctx context.Context, batch int) (int, error) {
	now := g.now()
	return g.store.PruneAttack(ctx, now.Add(-bruteForceExpiry), now, batch)
}

// maxUpstreamDuration is the longest entra_lockout_duration_seconds:
// counters idle past the brute-force expiry are pruned, so no longer
// window can be kept.
const maxUpstreamDuration = int64(bruteForceExpiry / time.Second)

// OptionError is a lockout option of a connection that UpstreamPolicy
// cannot use. Option is its key inside options; Reason is worded as the
// Management API's payload validation errors.
type OptionError struct {
	Option string
	Reason string
}

func (e *OptionError) Error() string { return "attack: options." + e.Option + ": " + e.Reason }

// CheckUpstreamPolicy checks the lockout options among a connection's
// options (key to JSON value) as the Management API saves them: the
// threshold a whole number from 0, the duration a whole number of seconds
// from 1 to 30 days. null counts as absent. The error is an *OptionError.
func CheckUpstreamPolicy(options map[string]json.RawMessage) error {
	for _, o := range []struct {
		key      string
		min, max int64
	}{
		{OptionLockoutThreshold, 0, math.MaxInt64},
		{OptionLockoutDuration, 1, maxUpstreamDuration},
	} {
		raw, ok := options[o.key]
		if !ok {
			continue
		}
		n, typ := wholeNumber(raw)
		switch {
		case typ == "null":
		case typ != "integer":
			return &OptionError{Option: o.key, Reason: "Expected type integer but found type " + typ}
		case n < o.min:
			return &OptionError{Option: o.key, Reason: fmt.Sprintf("Value %s is less than minimum %d", bytes.TrimSpace(raw), o.min)}
		case n > o.max:
			return &OptionError{Option: o.key, Reason: fmt.Sprintf("Value %s is greater than maximum %d", bytes.TrimSpace(raw), o.max)}
		}
	}
	return nil
}

// wholeNumber reads a JSON integer, one beyond int64 as the nearest
// int64. typ is "integer" when it is one, else the JSON type found
// ("null", "number" for a fraction, "string", ...).
func wholeNumber(raw json.RawMessage) (n int64, typ string) {
	raw = bytes.TrimSpace(raw)
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) {
		return n, "integer"
	}
	switch {
	case len(raw) == 0:
		return 0, "unknown"
	case raw[0] == '"':
		return 0, "string"
	case raw[0] == '{':
		return 0, "object"
	case raw[0] == '[':
		return 0, "array"
	case raw[0] == 't' || raw[0] == 'f':
		return 0, "boolean"
	case raw[0] == 'n':
		return 0, "null"
	}
	return 0, "number"
}

// UpstreamPolicy reads the upstream lockout policy from connection
// options: the threshold (Gatehouse stops one below it) and the window
// within which failures count. A threshold of 0 turns the budget off.
// Each option is read on its own: a value the Management API would now
// refuse (stored before it checked them) falls back to its default
// without resetting the other option.
func UpstreamPolicy(options json.RawMessage) (threshold int, window time.Duration) {
	threshold, window = DefaultUpstreamThreshold, DefaultUpstreamWindow
	// Raw values take any JSON type, so one option of the wrong type
	// cannot fail the decoding of the other; a map, unlike a struct,
	// matches keys exactly, as CheckUpstreamPolicy does.
	var o map[string]json.RawMessage
	if len(options) == 0 || json.Unmarshal(options, &o) != nil {
		return threshold, window
	}
	if n, typ := wholeNumber(o[OptionLockoutThreshold]); typ == "integer" && n >= 0 {
		threshold = int(n)
	}
	if n, typ := wholeNumber(o[OptionLockoutDuration]); typ == "integer" && n > 0 {
		// Capped for rows stored before the Management API refused longer
		// durations; capping also stops a huge value from overflowing into
		// a negative window that never refuses.
		window = time.Duration(min(n, maxUpstreamDuration)) * time.Second
	}
	return threshold, window
}

// Settle settles t by what the upstream said of the login (loginErr, nil
// for a success). Only a refused password, or an account the upstream
// already locked, counts as a failure; a successful login resets the
// counts; any other outcome gives the attempt back, including one that
// proves the password right but refuses the sign-in (MFA required,
// password expired): it is no success, and no failure either. A nil t
// (no guard) settles nothing.
func (t *Ticket) Settle(ctx context.Context, loginErr error) error {
	switch {
	case t == nil:
		return nil
	case loginErr == nil:
		return t.Succeeded(ctx)
	}
	switch connection.AsError(loginErr).Kind {
	case connection.KindInvalidCredentials, connection.KindAccountLocked:
		return t.Failed(ctx)
	default:
		return t.Inconclusive(ctx)
	}
}

// Failed settles an attempt the upstream refused for its credentials:
// everything taken stays counted.
func (t *Ticket) Failed(context.Context) error { return nil }

// Succeeded settles a successful login: the identifier's brute-force
// counter of the connection at this IP, its counter across IPs and its
// upstream budget are cleared, and the IP's token comes back, since the
// throttle counts failures. Its counters at other IPs stay (Auth0 blocks
// "that identifier from that IP"): each success of the user would
// otherwise give an attacker's blocked address another round of guesses.
// Other connections' counters stay: a password accepted by one says
// nothing about an account of another.
func (t *Ticket) Succeeded(ctx context.Context) error {
	if err := t.g.store.ClearLogin(ctx, *t.Success()); err != nil {
		return fmt.Errorf("attack: %w", err)
	}
	return nil
}

// Success is the write Succeeded makes, for a caller that makes it part
// of its own store write (store.LoginStore's RecordLogin) instead: a
// login then costs one write fewer. It is nil for a nil t.
func (t *Ticket) Success() *store.LoginClear {
	if t == nil {
		return nil
	}
	return &store.LoginClear{Connection: t.connection, Identifier: t.identifier, IP: t.ip, Bucket: t.bucket, Interval: t.interval}
}

// Inconclusive settles an attempt that proved nothing about the password
// (the upstream was down or misconfigured): everything taken comes back.
func (t *Ticket) Inconclusive(ctx context.Context) error {
	var errs []error
	for _, c := range t.counters {
		errs = append(errs, t.g.store.ReturnAttempt(ctx, c))
	}
	if t.bucket != "" {
		errs = append(errs, t.g.store.ReturnToken(ctx, t.bucket, t.interval))
	}
	t.counters, t.bucket = nil, ""
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("attack: %w", err)
	}
	return nil
}
