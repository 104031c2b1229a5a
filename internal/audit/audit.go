package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Auth0 log event type codes used by Gatehouse.
const (
	// SuccessExchangePassword: a password grant issued tokens.
	SuccessExchangePassword = "sepft"
	// FailedExchangePassword: a password grant failed for a reason other
	// than the credentials (policy, configuration, upstream outage).
	FailedExchangePassword = "fepft"
	// FailedLoginWrongPassword: wrong password (Auth0 "fp").
	FailedLoginWrongPassword = "fp"
	// FailedLoginUnknownUser: the username does not exist (Auth0 "fu").
	FailedLoginUnknownUser = "fu"
	// FailedLogin: a login failed before it reached the credentials check
	// (Auth0 "f"), e.g. connection disabled for the client.
	FailedLogin = "f"
	// SuccessExchangeClientCredentials and FailedExchangeClientCredentials
	// are Auth0's seccft and feccft.
	SuccessExchangeClientCredentials = "seccft"
	FailedExchangeClientCredentials  = "feccft"
	// SuccessExchangeRefreshToken and FailedExchangeRefreshToken are
	// Auth0's sertft and fertft: a refresh token exchanged, or refused
	// (unknown, expired, revoked, another client's).
	SuccessExchangeRefreshToken = "sertft"
	FailedExchangeRefreshToken  = "fertft"
	// FailedExchangeRotatingRefreshToken: a rotated refresh token was
	// reused, so its whole family was revoked (Auth0 "ferrt").
	FailedExchangeRotatingRefreshToken = "ferrt"
	// SuccessRevokeRefreshToken: POST /oauth/revoke revoked a refresh
	// token's family (Auth0 "srrt").
	SuccessRevokeRefreshToken = "srrt"
	// SuccessAPIOperation and FailedAPIOperation: a Management API write
	// (POST, PATCH, PUT, DELETE) by an authenticated caller succeeded or
	// failed (Auth0 "sapi" and "fapi").
	SuccessAPIOperation = "sapi"
	FailedAPIOperation  = "fapi"
	// BlockedAccount: brute-force protection or the upstream lockout
	// budget refused a login (Auth0 "limit_wc").
	BlockedAccount = "limit_wc"
	// BlockedIP: suspicious IP throttling refused a login (Auth0 "limit_mu").
	BlockedIP = "limit_mu"
)

var descriptions = map[string]string{
	SuccessExchangePassword:            "Successful exchange of password for access token",
	FailedExchangePassword:             "Failed exchange of password for access token",
	FailedLoginWrongPassword:           "Wrong email or password.",
	FailedLoginUnknownUser:             "Wrong email or password.",
	FailedLogin:                        "Failed login",
	SuccessExchangeClientCredentials:   "Successful exchange of Access Token for a Client Credentials Grant",
	FailedExchangeClientCredentials:    "Failed exchange of Access Token for a Client Credentials Grant",
	SuccessExchangeRefreshToken:        "Successful exchange of Refresh Token for Access Token",
	FailedExchangeRefreshToken:         "Failed exchange of Refresh Token for Access Token",
	FailedExchangeRotatingRefreshToken: "Failed exchange of Rotating Refresh Token",
	SuccessRevokeRefreshToken:          "Successful Refresh Token Revocation",
	SuccessAPIOperation:                "Successful API Operation",
	FailedAPIOperation:                 "Failed API Operation",
	BlockedAccount:                     "Blocked Account",
	BlockedIP:                          "Blocked IP Address",
}

// Event is one log event. Details holds extra, non-secret facts; Gatehouse
// puts the upstream error code, trace id and reasons there.
type Event struct {
	Type         string         `json:"type"`
	Date         time.Time      `json:"date"`
	Description  string         `json:"description,omitempty"`
	ClientID     string         `json:"client_id,omitempty"`
	ClientName   string         `json:"client_name,omitempty"`
	Connection   string         `json:"connection,omitempty"`
	ConnectionID string         `json:"connection_id,omitempty"`
	Strategy     string         `json:"strategy,omitempty"`
	StrategyType string         `json:"strategy_type,omitempty"`
	IP           string         `json:"ip,omitempty"`
	UserAgent    string         `json:"user_agent,omitempty"`
	UserID       string         `json:"user_id,omitempty"`
	UserName     string         `json:"user_name,omitempty"`
	Audience     string         `json:"audience,omitempty"`
	Scope        string         `json:"scope,omitempty"`
	Hostname     string         `json:"hostname,omitempty"`
	Details      map[string]any `json:"details,omitempty"`
}

// Recorder appends events to the tenant log.
type Recorder struct {
	logs store.LogStore
	now  func() time.Time
}

// NewRecorder returns a Recorder writing to logs.
func NewRecorder(logs store.LogStore) *Recorder {
	return &Recorder{logs: logs, now: time.Now}
}

// Record stores e, filling Date and a default Description.
func (r *Recorder) Record(ctx context.Context, e *Event) error {
	le, err := r.LogEvent(e)
	if err != nil {
		return err
	}
	if err := r.logs.AppendLogEvent(ctx, le); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// LogEvent is e as Record stores it, for a caller that stores it together
// with another write.
func (r *Recorder) LogEvent(e *Event) (*store.LogEvent, error) {
	if e.Date.IsZero() {
		e.Date = r.now().UTC()
	}
	if e.Description == "" {
		e.Description = descriptions[e.Type]
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &store.LogEvent{Type: e.Type, Date: e.Date, UserID: e.UserID, Doc: doc}, nil
}

// Document returns a stored event as Auth0's log event JSON object, with
// log_id and date from the store.
func Document(le *store.LogEvent) map[string]any {
	doc := map[string]any{}
	_ = json.Unmarshal(le.Doc, &doc)
	doc["log_id"] = le.ID
	doc["_id"] = le.ID
	doc["date"] = le.Date.UTC().Format("2006-01-02T15:04:05.000Z")
	doc["type"] = le.Type
	return doc
}
