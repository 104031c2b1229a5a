package oauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
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
	// basic holds the readings of an Authorization: Basic header
	// (basicReadings); hasBasic is whether the request sent one.
	basic    []basicPair
	hasBasic bool
	r        *http.Request
}

// basicPair is one reading of the client id and secret of an
// Authorization: Basic header.
type basicPair struct{ id, secret string }

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
		if t.basic = basicReadings(id, secret); len(t.basic) == 0 {
			return nil, errUnauthorizedClient(errors.New("malformed Basic credentials: not UTF-8 text without NUL characters"))
		}
		t.hasBasic = true
	}
	return t, nil
}

// basicReadings returns what the user and password of a Basic header may
// mean, each pair UTF-8 text without NUL. RFC 6749 §2.3.1 has both parts
// form-urlencoded before base64, and that reading comes first. But RFC
// 7617 encodes nothing, and neither do curl -u, Go's SetBasicAuth or most
// HTTP libraries, so a secret an administrator set with '+' or '%' in it
// would read as other bytes, or not at all. The pair as sent is therefore
// a second reading whenever it differs from the decoded one. Only whole
// pairs: a client encodes both parts or neither.
func basicReadings(id, secret string) []basicPair {
	var out []basicPair
	did, errID := url.QueryUnescape(id)
	dsecret, errSecret := url.QueryUnescape(secret)
	if errID == nil && errSecret == nil && isText(did) && isText(dsecret) {
		out = append(out, basicPair{did, dsecret})
	}
	raw := basicPair{id, secret}
	if (len(out) == 0 || out[0] != raw) && isText(id) && isText(secret) {
		out = append(out, raw)
	}
	return out
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

// clientClaim is a client id the request names, with the secrets it
// presented for that client.
type clientClaim struct {
	id      string
	secrets []string
}

// claims returns the clients the request names: the body's client_id, or
// the ids of the Basic readings, each with the Basic secrets read
// alongside it. Two readings name two ids only when the id itself holds
// '+' or '%'; a body client_id picks the reading it agrees with.
func (t *tokenRequest) claims() ([]clientClaim, error) {
	body := t.get("client_id")
	if !t.hasBasic {
		if body == "" {
			return nil, errMissing("client_id")
		}
		var secrets []string
		if s := t.get("client_secret"); s != "" {
			secrets = []string{s}
		}
		return []clientClaim{{id: body, secrets: secrets}}, nil
	}
	var out []clientClaim
	for _, b := range t.basic {
		if body != "" && body != b.id {
			continue
		}
		if i := slices.IndexFunc(out, func(c clientClaim) bool { return c.id == b.id }); i >= 0 {
			out[i].secrets = append(out[i].secrets, b.secret)
			continue
		}
		out = append(out, clientClaim{id: b.id, secrets: []string{b.secret}})
	}
	if len(out) == 0 {
		return nil, errInvalidRequest("client_id in the body and in the Authorization header differ.")
	}
	return out, nil
}

// errUnknownClient is the cause of the refusal of a client id that names
// no client.
var errUnknownClient = errors.New("unknown client")

// authenticateClient loads the client and checks the credentials it sent
// against its token_endpoint_auth_method, or its client assertion
// (client_assertion.go).
func (p *Provider) authenticateClient(t *tokenRequest) (*store.Client, error) {
	if t.get("client_assertion") != "" || t.get("client_assertion_type") != "" {
		return p.authenticateAssertion(t)
	}
	claims, err := t.claims()
	if err != nil {
		return nil, err
	}
	// RFC 6749 §2.3: one authentication method per request. Were a secret
	// accepted in both places, only one would be checked, and whatever the
	// other said would pass unseen.
	if t.hasBasic && t.get("client_secret") != "" {
		return nil, errUnauthorizedClient(errors.New("client secret both in the Authorization header and in the body"))
	}
	// Every claim is checked, whichever succeeds, so that the time taken
	// does not tell which reading of the header matched. Of several
	// refusals, the one that says most is kept for the log: a server
	// error, then one about a client that exists. The answer is the same
	// 401 for all the others.
	var (
		found   *store.Client
		refusal error
	)
	for _, cl := range claims {
		c, err := p.authenticateSecret(t.r.Context(), cl.id, cl.secrets, t.hasBasic)
		switch {
		case err == nil:
			if found == nil {
				found = c
			}
		case refusal == nil, errors.Is(refusal, errUnknownClient), isServerError(err) && !isServerError(refusal):
			refusal = err
		}
	}
	if found != nil {
		return found, nil
	}
	return nil, refusal
}

func isServerError(err error) bool {
	var oe *Error
	return errors.As(err, &oe) && oe.Status >= http.StatusInternalServerError
}

// authenticateSecret checks the secrets presented for client id against its
// token_endpoint_auth_method; viaBasic is whether they came in an
// Authorization: Basic header. Any one of them may match.
func (p *Provider) authenticateSecret(ctx context.Context, id string, presented []string, viaBasic bool) (*store.Client, error) {
	c, err := p.clients.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthorizedClient(errUnknownClient)
	}
	if err != nil {
		return nil, errServer(err)
	}
	if c.PrivateKeyJWTCredentials != nil {
		return nil, errUnauthorizedClient(errors.New("private_key_jwt client without a client assertion"))
	}
	switch c.TokenEndpointAuthMethod {
	case "none":
		// A public client has no secret to check; one that sends a secret
		// is confused about what it is, and Auth0 refuses it too.
		if viaBasic || len(presented) > 0 {
			return nil, errUnauthorizedClient(errors.New("public client sent a secret"))
		}
		return c, nil
	case "client_secret_basic":
		if !viaBasic {
			return nil, errUnauthorizedClient(errors.New("client_secret_basic client without Basic credentials"))
		}
	}
	if !slices.ContainsFunc(presented, func(s string) bool { return s != "" }) {
		return nil, errUnauthorizedClient(errors.New("missing client secret"))
	}
	stored, err := p.secrets.Open(c.SecretEnc, store.ClientSecretAAD(c.ClientID))
	if err != nil {
		return nil, errServer(fmt.Errorf("open client secret: %w", err))
	}
	// Each presented secret is compared in full, without stopping at a
	// match: only their number and lengths show in the time taken, and
	// both are the caller's.
	match := 0
	for _, s := range presented {
		match |= subtle.ConstantTimeCompare(stored, []byte(s))
	}
	if match != 1 {
		return nil, errUnauthorizedClient(errors.New("wrong client secret"))
	}
	return c, nil
}
