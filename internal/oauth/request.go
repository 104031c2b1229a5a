package oauth

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store"
)

// maxTokenRequestBytes bounds a token request body; real ones are well under
// 4 KiB.
const maxTokenRequestBytes = 64 << 10

// tokenRequest is a parsed /oauth/token request. Password is cleared by
// the password grant as soon as the upstream call returns.
type tokenRequest struct {
	params url.Values
	// basicID and basicSecret come from an Authorization: Basic header.
	basicID, basicSecret string
	hasBasic             bool
	r                    *http.Request
}

func (t *tokenRequest) get(name string) string {
	if v := t.params[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// require returns the parameter or the Auth0 "Missing required parameter"
// error.
func (t *tokenRequest) require(name string) (string, error) {
	v := t.get(name)
	if v == "" {
		return "", errMissing(name)
	}
	return v, nil
}

// errPostOnly answers a method other than POST at the token or
// revocation endpoint: with the Allow header RFC 9110 §15.5.6 requires,
// and the body of the endpoint's other errors rather than the router's
// plain text.
func errPostOnly(endpoint string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "The " + endpoint + " endpoint accepts POST only.",
		Header: http.Header{"Allow": {http.MethodPost}}}
}

// parseTokenRequest reads a form or JSON body. Each parameter may appear
// once (RFC 6749 §3.2); JSON values must be strings.
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (*tokenRequest, error) {
	// Content-Type and Authorization are single-valued (RFC 9110): of two,
	// a proxy in front may have acted on the one Gatehouse would not.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || len(r.Header.Values("Content-Type")) > 1 {
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: fmt.Sprintf("Request body exceeds %d bytes.", maxTokenRequestBytes)}
		}
		return nil, errInvalidRequest("Could not read the request body.")
	}
	t := &tokenRequest{r: r}
	var malformed *Error
	switch mt {
	case "application/x-www-form-urlencoded":
		malformed = errInvalidRequest("Malformed form body.")
		if t.params, err = url.ParseQuery(string(body)); err != nil {
			return nil, malformed
		}
	case "application/json":
		malformed = errInvalidRequest("Malformed JSON body.")
		if t.params, err = parseJSONParams(body); err != nil {
			return nil, err
		}
	default:
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json.")
	}
	for k, v := range t.params {
		if len(v) > 1 {
			return nil, errRepeated(k)
		}
	}
	for k, v := range t.params {
		if !isText(k) {
			return nil, malformed
		}
		if !isText(v[0]) {
			return nil, errInvalidRequest("Parameter " + k + " must be UTF-8 text without NUL characters.")
		}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, errUnauthorizedClient(errors.New("more than one Authorization header"))
	}
	if h := r.Header.Get("Authorization"); h != "" {
		id, secret, ok := r.BasicAuth()
		if !ok {
			return nil, errUnauthorizedClient(errors.New("malformed Authorization header"))
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
		if id, err = url.QueryUnescape(id); err != nil {
			return nil, errUnauthorizedClient(errors.New("malformed Basic client id"))
		}
		if secret, err = url.QueryUnescape(secret); err != nil {
			return nil, errUnauthorizedClient(errors.New("malformed Basic client secret"))
		}
		if !isText(id) || !isText(secret) {
			return nil, errUnauthorizedClient(errors.New("malformed Basic credentials: not UTF-8 text without NUL characters"))
		}
		t.basicID, t.basicSecret, t.hasBasic = id, secret, true
	}
	return t, nil
}

// isText reports whether s is UTF-8 without NUL: anything else names no
// client, API or user, and PostgreSQL refuses to compare it at all, which
// would turn a malformed request into a server error.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// parseJSONParams reads a JSON object of string (or null) values. It walks
// the tokens because decoding into a map keeps the last of a repeated key
// silently, while a proxy in front may act on the first: a repeat is
// refused, as in a form body.
func parseJSONParams(body []byte) (url.Values, error) {
	malformed := errInvalidRequest("Malformed JSON body.")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, malformed
	}
	params := url.Values{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed
		}
		k := tok.(string) // the decoder reports a non-string key as a syntax error
		if seen[k] {
			return nil, errRepeated(k)
		}
		seen[k] = true
		tok, err = dec.Token()
		if err != nil {
			return nil, malformed
		}
		switch v := tok.(type) {
		case string:
			params[k] = []string{v}
		case nil:
		default:
			return nil, errInvalidRequest("Parameter " + k + " must be a string.")
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, malformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed
	}
	return params, nil
}

// clientID is the client named by the request, from the body or Basic.
func (t *tokenRequest) clientID() (string, error) {
	body := t.get("client_id")
	switch {
	case t.hasBasic && body != "" && body != t.basicID:
		return "", errInvalidRequest("client_id in the body and in the Authorization header differ.")
	case t.hasBasic:
		return t.basicID, nil
	case body != "":
		return body, nil
	}
	return "", errMissing("client_id")
}

// authenticateClient loads the client and checks the credentials it sent
// against its token_endpoint_auth_method, or its client assertion
// (client_assertion.go).
func (p *Provider) authenticateClient(t *tokenRequest) (*store.Client, error) {
	if t.get("client_assertion") != "" || t.get("client_assertion_type") != "" {
		return p.authenticateAssertion(t)
	}
	id, err := t.clientID()
	if err != nil {
		return nil, err
	}
	postSecret := t.get("client_secret")
	// RFC 6749 §2.3: one authentication method per request. Were a secret
	// accepted in both places, only one would be checked, and whatever the
	// other said would pass unseen.
	if t.hasBasic && postSecret != "" {
		return nil, errUnauthorizedClient(errors.New("client secret both in the Authorization header and in the body"))
	}
	ctx := t.r.Context()
	c, err := p.clients.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthorizedClient(fmt.Errorf("unknown client"))
	}
	if err != nil {
		return nil, errServer(err)
	}
	if c.PrivateKeyJWTCredentials != nil {
		return nil, errUnauthorizedClient(errors.New("private_key_jwt client without a client assertion"))
	}
	var presented string
	switch c.TokenEndpointAuthMethod {
	case "none":
		// A public client has no secret to check; one that sends a secret
		// is confused about what it is, and Auth0 refuses it too.
		if t.hasBasic || postSecret != "" {
			return nil, errUnauthorizedClient(errors.New("public client sent a secret"))
		}
		return c, nil
	case "client_secret_basic":
		if !t.hasBasic {
			return nil, errUnauthorizedClient(errors.New("client_secret_basic client without Basic credentials"))
		}
		presented = t.basicSecret
	default: // client_secret_post
		if t.hasBasic {
			presented = t.basicSecret
		} else {
			presented = postSecret
		}
	}
	if presented == "" {
		return nil, errUnauthorizedClient(errors.New("missing client secret"))
	}
	stored, err := p.secrets.Open(c.SecretEnc, store.ClientSecretAAD(c.ClientID))
	if err != nil {
		return nil, errServer(fmt.Errorf("open client secret: %w", err))
	}
	if subtle.ConstantTimeCompare(stored, []byte(presented)) != 1 {
		return nil, errUnauthorizedClient(errors.New("wrong client secret"))
	}
	return c, nil
}
