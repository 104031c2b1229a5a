package management

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
)

// decodeObject reads a JSON object body into a map, keeping numbers exact.
func decodeObject(r *http.Request) (map[string]any, error) {
	raw, err := readJSONBody(r)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := decodeJSON(raw, &m); err != nil {
		return nil, BadBody("Payload validation error: 'Invalid JSON body'.")
	}
	if m == nil {
		return nil, BadBody("Payload validation error: 'Expected type object but found type null'.")
	}
	return m, nil
}

// errTrailingData is a body with more after its JSON value.
var errTrailingData = errors.New("management: data after the JSON value")

// decodeJSON decodes raw, which must hold exactly one JSON value, into v,
// with numbers as json.Number. Every request body goes through it:
// json.Decoder.More reports false before a stray } or ], so checking it
// would accept {"name":"x"}} and apply it.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	var rest json.RawMessage
	if err := dec.Decode(&rest); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	return nil
}

// readJSONBody checks the content type and size and returns the body.
func readJSONBody(r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json", ErrorCode: "invalid_content_type"}
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("Payload exceeds %d bytes", maxBodyBytes), ErrorCode: "payload_too_large"}
		}
		return nil, BadBody("Could not read the request body")
	}
	if hasNul(raw) {
		return nil, BadBody("Payload validation error: 'Strings must not contain NUL characters'.")
	}
	if k, ok := repeatedKey(raw); ok {
		return nil, BadBody(fmt.Sprintf("Payload validation error: 'Property %s given more than once'.", k))
	}
	return raw, nil
}

// repeatedKey returns a property name that one object of the JSON
// document raw gives twice, at any depth. Decoding keeps the last of the
// two silently, while a proxy or filter in front may have judged the
// body by the first: as at the token endpoint, a repeat is refused.
// Malformed JSON is left to the decoding that follows.
func repeatedKey(raw []byte) (string, bool) {
	type frame struct {
		keys    map[string]bool // nil in an array
		wantKey bool
	}
	var stack []*frame
	// valueDone records a value ending in the container around it.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				if stack[n-1].keys[k] {
					return k, true
				}
				stack[n-1].keys[k] = true
				stack[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
		if len(stack) == 0 {
			return "", false
		}
	}
}

// hasNul reports whether a string of the JSON document raw, a property
// name or a value, holds a NUL: it names nothing, and PostgreSQL can
// neither store nor compare it, while SQLite would keep it. JSON can only
// spell it \u0000, so other bodies are not tokenized twice. Malformed JSON
// is left to the decoding that follows, which words its error.
func hasNul(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, 0) {
			return true
		}
	}
}

// propertyError is Auth0's wording for a property of the wrong type.
func propertyError(prop, expected string, got any) *Error {
	return BadBody(fmt.Sprintf("Payload validation error: 'Expected type %s but found type %s' on property %s.", expected, jsonType(got), prop))
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// additionalProperties is Auth0's error for unknown root properties.
func additionalProperties(names []string) *Error {
	return BadBody("Payload validation error: 'Additional properties not allowed: " + strings.Join(names, ",") + "'.")
}

// additionalPropertiesOn is additionalProperties for the nested object
// prop.
func additionalPropertiesOn(prop string, names []string) *Error {
	return BadBody("Payload validation error: 'Additional properties not allowed: " + strings.Join(names, ",") + "' on property " + prop + ".")
}

// filterFields applies Auth0's fields/include_fields query parameters to
// one JSON object.
func filterFields(obj map[string]any, r *http.Request) map[string]any {
	fields := r.URL.Query().Get("fields")
	if fields == "" {
		return obj
	}
	include := r.URL.Query().Get("include_fields") != "false"
	want := map[string]bool{}
	for _, f := range strings.Split(fields, ",") {
		want[strings.TrimSpace(f)] = true
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if want[k] == include {
			out[k] = v
		}
	}
	return out
}

// checkTypes refuses properties not in types and values not of their
// type.
func checkTypes(body map[string]any, types map[string]string) error {
	var unknown []string
	for k, v := range body {
		want, ok := types[k]
		if !ok {
			unknown = append(unknown, k)
			continue
		}
		if jsonType(v) != want {
			return propertyError(k, want, v)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return additionalProperties(unknown)
	}
	return nil
}
