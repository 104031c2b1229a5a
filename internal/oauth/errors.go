package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error is an Authentication API error: the HTTP status and the body
// {"error": Code, "error_description": Description}. Cause is for logs and
// errors.Is; it never reaches the client.
type Error struct {
	Status      int
	Code        string
	Description string
	// Header is added to the response (Retry-After, X-RateLimit-*).
	Header http.Header
	Cause  error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "oauth: " + e.Code + ": " + e.Description + ": " + e.Cause.Error()
	}
	return "oauth: " + e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error with the same code, so callers can write
// errors.Is(err, oauth.ErrInvalidGrant).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Description == "" || t.Description == e.Description)
}

// Sentinels for errors.Is; compare by code only.
var (
	ErrInvalidRequest = &Error{Code: "invalid_request"}
	ErrInvalidGrant   = &Error{Code: "invalid_grant"}
	ErrAccessDenied   = &Error{Code: "access_denied"}
)

func errInvalidRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
}

func errMissing(param string) *Error {
	return errInvalidRequest("Missing required parameter: " + param)
}

func errRepeated(param string) *Error {
	return errInvalidRequest("Parameter " + param + " must not be repeated.")
}

// errUnauthorizedClient is Auth0's answer for unknown clients and bad
// secrets alike, so the endpoint does not reveal which client ids exist.
func errUnauthorizedClient(cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "access_denied", Description: "Unauthorized", Cause: cause}
}

// challengeBasic adds the WWW-Authenticate header RFC 6749 §5.2 requires
// when a client that authenticated with the Authorization header is
// refused. The status and body stay Auth0's 401 access_denied: an SDK
// reads those, while HTTP clients that retry Basic credentials look for
// the challenge.
func challengeBasic(r *http.Request, err error) error {
	var oe *Error
	if r.Header.Get("Authorization") == "" || !errors.As(err, &oe) || oe.Status != http.StatusUnauthorized {
		return err
	}
	if oe.Header == nil {
		oe.Header = http.Header{}
	}
	oe.Header.Set("WWW-Authenticate", `Basic realm="oauth", charset="UTF-8"`)
	return err
}

func errGrantNotAllowed(grant string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "unauthorized_client", Description: "Grant type '" + grant + "' not allowed for the client."}
}

func errServer(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "Internal error.", Cause: cause}
}

// writeError answers with err as an Authentication API error body.
func writeError(w http.ResponseWriter, err error) {
	var oe *Error
	if !errors.As(err, &oe) {
		oe = errServer(err)
	}
	h := w.Header()
	for k, vs := range oe.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(oe.Status)
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{oe.Code, oe.Description}
	_ = json.NewEncoder(w).Encode(body)
}
