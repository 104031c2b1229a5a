package management

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/store"
)

// AttackProtection keeps the attack-protection settings and blocks.
type AttackProtection interface {
	BruteForce(ctx context.Context) (attack.BruteForce, error)
	// UpdateBruteForce stores the settings change made of the stored ones;
	// store.ErrConflict when they were written since they were read.
	UpdateBruteForce(ctx context.Context, change func(*attack.BruteForce) error) (attack.BruteForce, error)
	SuspiciousIP(ctx context.Context) (attack.SuspiciousIP, error)
	// UpdateSuspiciousIP is UpdateBruteForce for suspicious IP throttling.
	UpdateSuspiciousIP(ctx context.Context, change func(*attack.SuspiciousIP) error) (attack.SuspiciousIP, error)
	Blocks(ctx context.Context, identifier string, respectEnablement bool, options attack.OptionsLookup) ([]attack.Block, error)
	// Unblock clears the identifiers' counts on connection, or on every
	// connection when it is "".
	Unblock(ctx context.Context, connection string, identifiers []string) error
	// IPBlocked reports whether suspicious IP throttling refuses ip now.
	IPBlocked(ctx context.Context, ip string) (bool, error)
	// UnblockIP lifts ip's suspicious IP throttling.
	UnblockIP(ctx context.Context, ip string) (bool, error)
	// Check admits a password attempt of `try` as it would a login's.
	Check(ctx context.Context, a attack.Attempt) (*attack.Ticket, error)
}

// settingsSchema is the JSON type of each property a settings object
// accepts: "boolean", "string", "integer", "string array", or a nested
// settingsSchema for an object. Nothing is nullable, and keys match
// exactly, as Auth0's validation does; Go's struct decoding alone would
// take MAX_ATTEMPTS for max_attempts and null for "leave as is".
type settingsSchema map[string]any

var (
	stageSchema      = settingsSchema{"max_attempts": "integer", "rate": "integer"}
	bruteForceSchema = settingsSchema{
		"enabled": "boolean", "shields": "string array", "allowlist": "string array", "mode": "string", "max_attempts": "integer",
	}
	suspiciousIPSchema = settingsSchema{
		"enabled": "boolean", "shields": "string array", "allowlist": "string array",
		"stage": settingsSchema{
			attack.StagePreLogin: stageSchema, "pre-user-registration": stageSchema, "pre-custom-token-exchange": stageSchema,
		},
	}
)

func (a *API) attackProtectionRoutes(route routeFunc) {
	route("GET /api/v2/attack-protection/brute-force-protection", "read:attack_protection", a.getBruteForce)
	route("PATCH /api/v2/attack-protection/brute-force-protection", "update:attack_protection", a.patchBruteForce)
	route("GET /api/v2/attack-protection/suspicious-ip-throttling", "read:attack_protection", a.getSuspiciousIP)
	route("PATCH /api/v2/attack-protection/suspicious-ip-throttling", "update:attack_protection", a.patchSuspiciousIP)
}

func (a *API) getBruteForce(w http.ResponseWriter, r *http.Request) {
	b, err := a.attack.BruteForce(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, b)
}

func (a *API) getSuspiciousIP(w http.ResponseWriter, r *http.Request) {
	s, err := a.attack.SuspiciousIP(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, s)
}

func (a *API) patchBruteForce(w http.ResponseWriter, r *http.Request) {
	patchGuardSettings(w, r, bruteForceSchema, a.attack.UpdateBruteForce)
}

func (a *API) patchSuspiciousIP(w http.ResponseWriter, r *http.Request) {
	patchGuardSettings(w, r, suspiciousIPSchema, a.attack.UpdateSuspiciousIP)
}

// patchGuardSettings answers a PATCH of one attack-protection document:
// the body, checked against schema, is merged into the stored settings by
// update, which validates and stores them, again over the settings as
// written when another write came first.
func patchGuardSettings[T any, P interface {
	*T
	Validate() error
}](w http.ResponseWriter, r *http.Request, schema settingsSchema, update func(context.Context, func(*T) error) (T, error)) {
	patch, err := decodeSettings(r, schema)
	if err != nil {
		WriteError(w, err)
		return
	}
	var out T
	err = retryConflicts(func() (err error) {
		out, err = update(r.Context(), func(cur *T) error {
			if err := patchSettings(patch, cur); err != nil {
				return err
			}
			if err := P(cur).Validate(); err != nil {
				return settingsError(err)
			}
			return nil
		})
		return err
	})
	writeSettings(w, out, err)
}

// writeSettings answers a settings PATCH: the settings stored, or err.
func writeSettings(w http.ResponseWriter, settings any, err error) {
	switch {
	case errors.Is(err, store.ErrConflict):
		WriteError(w, errBusy("attack protection setting", err))
	case err != nil:
		WriteError(w, err)
	default:
		WriteJSON(w, http.StatusOK, settings)
	}
}

// settingsError words a settings value Validate refused as Auth0's
// payload validation error, on the property when it names one.
func settingsError(err error) error {
	if se, ok := errors.AsType[*attack.SettingError](err); ok {
		return BadBody("Payload validation error: '" + se.Reason + "' on property " + se.Property + ".")
	}
	return BadBody("Payload validation error: '" + err.Error() + "'.")
}

// decodeSettings reads a settings PATCH's body and checks it against
// schema.
func decodeSettings(r *http.Request, schema settingsSchema) (map[string]any, error) {
	patch, err := decodeObject(r)
	if err != nil {
		return nil, err
	}
	if err := checkSettings("", patch, schema); err != nil {
		return nil, err
	}
	return patch, nil
}

// patchSettings merges patch into cur: objects merge property by property
// (so PATCH {"stage":{"pre-login":{"rate":1}}} keeps the other values),
// everything else is replaced. patch is left as it was, for a retry.
func patchSettings(patch map[string]any, cur any) error {
	raw, err := json.Marshal(cur)
	if err != nil {
		return internalError(err)
	}
	doc := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return internalError(err)
	}
	merge(doc, patch)
	merged, err := json.Marshal(doc)
	if err != nil {
		return internalError(err)
	}
	dec = json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cur); err != nil {
		// An integer too large for the field's Go type.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return BadBody("Payload validation error: 'Invalid type: expected " + te.Type.String() + "' on property " + te.Field + ".")
		}
		return BadBody("Payload validation error: '" + err.Error() + "'.")
	}
	return nil
}

// checkSettings refuses properties of obj (at path prefix) that schema
// does not name, in any other case too, and values not of their type.
func checkSettings(prefix string, obj map[string]any, schema settingsSchema) error {
	var unknown []string
	for k := range obj {
		if _, ok := schema[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		if prefix == "" {
			return additionalProperties(unknown)
		}
		return additionalPropertiesOn(prefix, unknown)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, path := obj[k], k
		if prefix != "" {
			path = prefix + "." + k
		}
		switch want := schema[k].(type) {
		case settingsSchema:
			sub, ok := v.(map[string]any)
			if !ok {
				return propertyError(path, "object", v)
			}
			if err := checkSettings(path, sub, want); err != nil {
				return err
			}
		case string:
			if err := checkSettingValue(path, want, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkSettingValue(path, want string, v any) error {
	switch want {
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return propertyError(path, "integer", v)
		}
	case "string array":
		_, err := stringArray(path, v)
		return err
	default:
		if jsonType(v) != want {
			return propertyError(path, want, v)
		}
	}
	return nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		sub, ok := v.(map[string]any)
		cur, isObj := dst[k].(map[string]any)
		if ok && isObj {
			merge(cur, sub)
			continue
		}
		dst[k] = v
	}
}
