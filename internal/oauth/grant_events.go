package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// grantEvent starts the tenant log event of a refresh-token or
// client-credentials exchange by an authenticated client; the grant fills
// in the user, audience and scope as it learns them.
func (p *Provider) grantEvent(t *tokenRequest, c *store.Client, typ string) *audit.Event {
	return &audit.Event{Type: typ, ClientID: c.ClientID, ClientName: c.Name, IP: p.clientIP(t, c),
		UserAgent: userAgent(t.r), Hostname: t.r.Host}
}

// maxUserAgentBytes is what log events and refresh tokens keep of a
// User-Agent, well above a browser's.
const maxUserAgentBytes = 1024

// userAgent is the request's User-Agent as text the store can keep. HTTP
// allows bytes that are not UTF-8 (obs-text), which PostgreSQL refuses in
// a text column, and a header as long as the server's header limit, which
// every event and refresh token of the client would carry.
func userAgent(r *http.Request) string {
	ua := strings.ToValidUTF8(r.UserAgent(), "\uFFFD")
	if len(ua) > maxUserAgentBytes {
		// The cut may split a character; its remains are dropped.
		ua = strings.ToValidUTF8(ua[:maxUserAgentBytes], "")
	}
	return ua
}

// recordGrant stores e. As with a login's event, a lost event is logged
// and does not change the answer.
func (p *Provider) recordGrant(ctx context.Context, e *audit.Event) {
	if p.audit == nil {
		return
	}
	if err := p.audit.Record(context.WithoutCancel(ctx), e); err != nil {
		p.logger.ErrorContext(ctx, "recording log event failed", "type", e.Type, "error", err)
	}
}

// recordRefusedGrant stores e as an event of type typ with the refusal's
// code, description and cause. Causes name what was wrong, never the
// token or secret presented.
func (p *Provider) recordRefusedGrant(ctx context.Context, e *audit.Event, typ string, err error) {
	// The success event may have been built already, for a store write
	// that then refused: its date and description are not this event's.
	e.Type, e.Date, e.Description = typ, time.Time{}, ""
	e.Details = map[string]any{}
	var oe *Error
	if errors.As(err, &oe) {
		e.Details["error"] = oe.Code
		e.Details["error_description"] = oe.Description
		if oe.Cause != nil {
			e.Details["cause"] = oe.Cause.Error()
		}
	} else {
		e.Details["cause"] = err.Error()
	}
	p.recordGrant(ctx, e)
}
