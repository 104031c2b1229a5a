package entra

import (
	"unicode/utf8"
)

// tokenWire is a token response as Entra sends it.
type tokenWire struct {
	TokenType    string  `json:"token_type"`
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	IDToken      string  `json:"id_token"`
	Scope        string  `json:"scope"`
	Resource     string  `json:"resource"`
	ExpiresIn    flexInt `json:"expires_in"`
	ExtExpiresIn flexInt `json:"ext_expires_in"`
	ExpiresOn    flexInt `json:"expires_on"`
	NotBefore    flexInt `json:"not_before"`
}

// parseTokenWire reads a token response of the shape Entra sends: one
// object whose keys are lower-case ASCII and whose values are strings
// without escapes or control characters, or integers. It does what
// json.Unmarshal into tokenWire does with such a body, in one pass over
// it: encoding/json read a response (three tokens, ~4 KB) at ~90 MB/s,
// ~40 µs of every login's CPU. ok is false for anything else, which
// json.Unmarshal then reads; FuzzParseTokenResponse checks that the two
// agree whenever ok is true.
func parseTokenWire(raw []byte) (w tokenWire, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return w, false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return w, skipSpace(raw, i+1) == len(raw)
	}
	for {
		key, next, ok := plainString(raw, i)
		if !ok || !lowerASCII(key) {
			return w, false
		}
		i = skipSpace(raw, next)
		if i >= len(raw) || raw[i] != ':' {
			return w, false
		}
		i = skipSpace(raw, i+1)
		if i >= len(raw) {
			return w, false
		}
		var value []byte
		quoted := raw[i] == '"'
		if quoted {
			if _, next, ok = plainString(raw, i); !ok {
				return w, false
			}
		} else if next, ok = plainInt(raw, i); !ok {
			return w, false
		}
		value, i = raw[i:next], next
		if !w.set(key, value, quoted) {
			return w, false
		}
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return w, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return w, skipSpace(raw, i+1) == len(raw)
		default:
			return w, false
		}
	}
}

// set stores a value under key as json.Unmarshal would: a string into a
// string field, a string or an integer into a flexInt field through its
// own UnmarshalJSON, any other key ignored. It reports false where
// json.Unmarshal would fail.
func (w *tokenWire) set(key string, value []byte, quoted bool) bool {
	var str *string
	var num *flexInt
	switch key {
	case "token_type":
		str = &w.TokenType
	case "access_token":
		str = &w.AccessToken
	case "refresh_token":
		str = &w.RefreshToken
	case "id_token":
		str = &w.IDToken
	case "scope":
		str = &w.Scope
	case "resource":
		str = &w.Resource
	case "expires_in":
		num = &w.ExpiresIn
	case "ext_expires_in":
		num = &w.ExtExpiresIn
	case "expires_on":
		num = &w.ExpiresOn
	case "not_before":
		num = &w.NotBefore
	default:
		return true
	}
	if str != nil {
		if !quoted {
			return false
		}
		*str = string(value[1 : len(value)-1])
		return true
	}
	return num.UnmarshalJSON(value) == nil
}

// plainString reads the JSON string at raw[i] when it has no escape, no
// control character and is valid UTF-8 (encoding/json would replace
// invalid UTF-8): its content and the index after its closing quote.
func plainString(raw []byte, i int) (s string, next int, ok bool) {
	if i >= len(raw) || raw[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			if !utf8.Valid(raw[i+1 : j]) {
				return "", 0, false
			}
			return string(raw[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// plainInt reads a JSON integer (-?(0|[1-9][0-9]*)) at raw[i] that no
// fraction or exponent follows, and returns the index after it.
func plainInt(raw []byte, i int) (next int, ok bool) {
	j := i
	if j < len(raw) && raw[j] == '-' {
		j++
	}
	start := j
	for j < len(raw) && raw[j] >= '0' && raw[j] <= '9' {
		j++
	}
	switch {
	case j == start, raw[start] == '0' && j-start > 1:
		return 0, false
	case j < len(raw) && (raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E'):
		return 0, false
	}
	return j, true
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// lowerASCII: such a key matches a field's name under encoding/json's
// case-insensitive matching only when it is that name.
func lowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || (c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
