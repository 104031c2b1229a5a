package management

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/store"
)

// connectionTryRoutes registers POST /api/v2/connections/{id}/try, a
// Gatehouse addition behind `gatehouse try`: it runs one password login
// against the connection's identity provider and reports every step. It
// neither creates the user nor issues tokens.
func (a *API) connectionTryRoutes(route routeFunc) {
	route("POST /api/v2/connections/{id}/try", "update:connections", a.tryConnection)
}

// TryStep is one step of a try, as the API returns it.
type TryStep struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	DurationMS float64 `json:"duration_ms"`
	Detail     string  `json:"detail,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// TryError is why the try failed: the kind the token endpoint would
// answer with, the upstream code and trace id, and what to fix.
type TryError struct {
	Kind    string `json:"kind"`
	Code    string `json:"code,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	Hint    string `json:"hint,omitempty"`
	Message string `json:"message"`
}

// TryResult is the body of POST /api/v2/connections/{id}/try.
type TryResult struct {
	Connection string         `json:"connection"`
	Strategy   string         `json:"strategy"`
	OK         bool           `json:"ok"`
	DurationMS float64        `json:"duration_ms"`
	Steps      []TryStep      `json:"steps"`
	UserID     string         `json:"user_id,omitempty"`
	Profile    map[string]any `json:"profile,omitempty"`
	Groups     []string       `json:"groups,omitempty"`
	Notes      []string       `json:"notes,omitempty"`
	Warnings   []string       `json:"warnings"`
	Error      *TryError      `json:"error,omitempty"`
}

func (a *API) tryConnection(w http.ResponseWriter, r *http.Request) {
	raw, err := readJSONBody(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(raw, &in); err != nil || in.Username == "" || in.Password == "" {
		WriteError(w, BadBody("Payload validation error: 'username and password are required strings'."))
		return
	}
	clear(raw)
	c, err := a.store.GetConnection(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, errNoConnection())
		return
	}
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	connector, ok := a.connectors.Password(c.Strategy)
	if !ok {
		WriteError(w, BadBody("Connections of strategy "+c.Strategy+" have no password login to try."))
		return
	}
	res := TryResult{Connection: c.Name, Strategy: c.Strategy, Warnings: []string{azuread.ROPCWarning}}
	if o, err := azuread.ParseOptions(c.Options); err == nil {
		res.Warnings = append(res.Warnings, o.Warnings()...)
	}
	// A try is a password attempt like a login's: without the guard,
	// anyone holding update:connections could test passwords without
	// limit and lock users out at Entra (Smart Lockout).
	ticket, err := a.attack.Check(r.Context(), attack.Attempt{Identifier: in.Username, IP: attack.ClientIP(r, nil, a.proxies),
		Connection: c.Name, Options: c.Options})
	var blocked *attack.Blocked
	switch {
	case errors.As(err, &blocked):
		in.Password = ""
		res.Steps = []TryStep{{Name: "attack protection", Error: blocked.Error()}}
		res.Error = tryBlocked(blocked, in.Username)
		WriteJSON(w, http.StatusOK, res)
		return
	case err != nil:
		WriteError(w, internalError(err))
		return
	}
	tr := &connection.Trace{}
	start := time.Now()
	// The call outlives a caller that gives up, as a login's does: once
	// the password is sent Entra counts a failure whether anyone waits or
	// not, and a cancelled call would be settled as inconclusive, giving
	// every counter back.
	id, err := connector.Login(connection.WithTrace(context.WithoutCancel(r.Context()), tr), c, in.Username, in.Password, "")
	in.Password = ""
	res.DurationMS = ms(time.Since(start))
	if serr := ticket.Settle(context.WithoutCancel(r.Context()), err); serr != nil {
		a.logger.ErrorContext(r.Context(), "attack protection: settling a try failed", "error", serr)
	}
	for _, s := range tr.Steps() {
		res.Steps = append(res.Steps, TryStep{Name: s.Name, OK: s.OK, DurationMS: ms(s.Duration), Detail: s.Detail, Error: s.Error})
	}
	for _, wmsg := range tr.Warnings() {
		if !contains(res.Warnings, wmsg) {
			res.Warnings = append(res.Warnings, wmsg)
		}
	}
	if err != nil {
		ce := connection.AsError(err)
		res.Error = &TryError{Kind: ce.Kind.String(), Code: ce.Code, TraceID: ce.TraceID, Hint: ce.Hint, Message: ce.Error()}
	} else {
		res.OK = true
		res.UserID = id.UserID
		res.Profile = id.Profile
		res.Notes = id.Notes
		if g, ok := id.Profile["groups"].([]string); ok {
			res.Groups = g
		}
	}
	WriteJSON(w, http.StatusOK, res)
}

// tryBlocked says which control refused a try before it reached the
// identity provider, and how the administrator lifts it.
func tryBlocked(b *attack.Blocked, username string) *TryError {
	e := &TryError{Kind: "too_many_attempts", Message: "attack protection refused the attempt (" + string(b.Reason) + "); nothing was sent to the identity provider"}
	switch b.Reason {
	case attack.ReasonBruteForce:
		e.Hint = "this username is blocked after too many failed attempts; DELETE /api/v2/user-blocks?identifier=" + url.QueryEscape(username) + " unblocks it"
	case attack.ReasonSuspiciousIP:
		e.Hint = "too many failed attempts came from this address; it may try again after " + b.Reset.UTC().Format(time.RFC3339)
	default:
		e.Hint = "more failures now could make Entra's Smart Lockout lock this account; wait for its lockout window (connection option entra_lockout_duration_seconds) to pass"
	}
	return e
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
