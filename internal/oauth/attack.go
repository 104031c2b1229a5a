package oauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Guard decides whether a password login may reach the upstream.
type Guard interface {
	Check(ctx context.Context, a attack.Attempt) (*attack.Ticket, error)
}

// admit asks the guard before the upstream call. A refusal is answered
// with 429 too_many_attempts and logged as limit_wc or limit_mu; the
// upstream never sees the password.
func (p *Provider) admit(ctx context.Context, a *loginAttempt, conn *store.Connection, connector connection.PasswordConnector) (*attack.Ticket, error) {
	if p.guard == nil {
		return nil, nil
	}
	// WithUsers: on PostgreSQL the take's round trip also reads the user
	// the username names, so a login whose user has that email reads no
	// user afterwards where syncUser can use a read from before Entra:
	// only on on_each_login connections (syncUser).
	withUsers := true
	if rs, ok := connector.(connection.RootSyncer); ok {
		withUsers = syncsEachLogin(rs.SyncMode(conn))
	}
	ticket, err := p.guard.Check(ctx, attack.Attempt{Identifier: a.user, IP: a.ip, Connection: conn.Name, Options: conn.Options,
		WithUsers: withUsers})
	var b *attack.Blocked
	switch {
	case errors.As(err, &b):
		return nil, p.refuse(ctx, a, blockedEvent(b), blockedError(b), map[string]any{"reason": string(b.Reason)})
	case err != nil:
		return nil, p.refuse(ctx, a, audit.FailedExchangePassword, errServer(err), nil)
	}
	return ticket, nil
}

func blockedEvent(b *attack.Blocked) string {
	if b.Reason == attack.ReasonSuspiciousIP {
		return audit.BlockedIP
	}
	return audit.BlockedAccount
}

// blockedError is Auth0's answer for each control; the upstream budget
// has no Auth0 equivalent and says what happened without naming Entra's
// lockout, which Gatehouse prevented.
func blockedError(b *attack.Blocked) *Error {
	e := &Error{Status: http.StatusTooManyRequests, Code: "too_many_attempts"}
	switch b.Reason {
	case attack.ReasonSuspiciousIP:
		e.Description = "We have detected suspicious login behavior and further attempts will be blocked. Please contact the administrator."
		e.Header = http.Header{
			"X-Ratelimit-Limit":     {strconv.Itoa(b.Limit)},
			"X-Ratelimit-Remaining": {strconv.Itoa(b.Remaining)},
			// Rounded up: the token comes within that second, and a time
			// rounded down would send the client back before it.
			"X-Ratelimit-Reset": {strconv.FormatInt((b.Reset.UnixMilli()+999)/1000, 10)},
		}
	case attack.ReasonBruteForce:
		e.Description = "Your account has been blocked after multiple consecutive login attempts."
	default:
		e.Description = "Too many failed sign-in attempts for this account. Try again later."
	}
	return e
}

// settle tells the guard what the upstream said (attack.Ticket.Settle),
// even when the caller has gone: an unsettled success or outage would
// stay counted as a failure.
func (p *Provider) settle(ctx context.Context, t *attack.Ticket, loginErr error) {
	if err := t.Settle(context.WithoutCancel(ctx), loginErr); err != nil {
		p.logger.ErrorContext(ctx, "attack protection: settling an attempt failed", "error", err)
	}
}
