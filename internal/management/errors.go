package management

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Error is a Management API error: HTTP status, Auth0's message and
// errorCode. Cause is for logs only.
type Error struct {
	Status    int
	Message   string
	ErrorCode string
	Cause     error
}

func (e *Error) Error() string {
	s := "management: " + e.Message
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error with the same status and errorCode.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.ErrorCode == e.ErrorCode
}

// ErrInvalidBody is the sentinel of every payload validation error.
var ErrInvalidBody = &Error{Status: http.StatusBadRequest, ErrorCode: "invalid_body"}

// BadBody is Auth0's payload validation error; message names the property.
func BadBody(message string) *Error {
	return &Error{Status: http.StatusBadRequest, Message: message, ErrorCode: "invalid_body"}
}

// BadQuery is the error for an invalid query string parameter.
func BadQuery(message string) *Error {
	return &Error{Status: http.StatusBadRequest, Message: message, ErrorCode: "invalid_query_string"}
}

// NotFound is a 404 with Auth0's message and errorCode, e.g.
// NotFound("The connection does not exist", "inexistent_connection").
func NotFound(message, code string) *Error {
	return &Error{Status: http.StatusNotFound, Message: message, ErrorCode: code}
}

// Conflict is a 409.
func Conflict(message, code string) *Error {
	return &Error{Status: http.StatusConflict, Message: message, ErrorCode: code}
}

func internalError(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Message: "Internal error", Cause: cause}
}

// WriteError answers with err in the Management API error format.
func WriteError(w http.ResponseWriter, err error) {
	var me *Error
	if !errors.As(err, &me) {
		me = internalError(err)
	}
	body := struct {
		StatusCode int    `json:"statusCode"`
		Error      string `json:"error"`
		Message    string `json:"message"`
		ErrorCode  string `json:"errorCode,omitempty"`
		Attributes any    `json:"attributes,omitempty"`
	}{StatusCode: me.Status, Error: http.StatusText(me.Status), Message: me.Message, ErrorCode: me.ErrorCode}
	if me.Status == http.StatusUnauthorized {
		// Auth0 repeats the reason under attributes.error for 401s.
		body.Attributes = map[string]string{"error": me.Message}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(me.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxPatches bounds how many times a read-modify-write starts again from
// what another write left.
const maxPatches = 5

// retryConflicts runs patch, which reads, changes and writes, again while
// the store refuses its write over another made since its read
// (store.ErrConflict): the change applies to the fresh value rather than
// undoing the other write. The last error is returned, that one too.
func retryConflicts(patch func() error) error {
	var err error
	for range maxPatches {
		if err = patch(); !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	return err
}

// errBusy is the answer when what (a client, an API, ...) was still
// changing under the request after every retry of retryConflicts.
func errBusy(what string, cause error) *Error {
	return &Error{Status: http.StatusConflict, Message: "The " + what + " is being changed by other requests; try again.", ErrorCode: "conflict", Cause: cause}
}
