package management

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/gatehouse/gatehouse/internal/attack"
)

// AttackProtection keeps the attack-protection settings and blocks.
type AttackProtection interface {
	BruteForce(ctx context.Context) (attack.BruteForce, error)
	SetBruteForce(ctx context.Context, b attack.BruteForce) error
	SuspiciousIP(ctx context.Context) (attack.SuspiciousIP, error)
	SetSuspiciousIP(ctx context.Context, s attack.SuspiciousIP) error
	Blocks(ctx context.Context, identifier string, respectEnablement bool, options attack.OptionsLookup) ([]attack.Block, error)
	Unblock(ctx context.Context, identifiers ...string) error
}

// The properties each settings object accepts; Auth0 refuses others.
var (
	bruteForceProps   = []string{"enabled", "shields", "allowlist", "mode", "max_attempts"}
	suspiciousIPProps = []string{"enabled", "shields", "allowlist", "stage"}
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
	cur, err := a.attack.BruteForce(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	if err := patchSettings(r, bruteForceProps, &cur); err != nil {
		WriteError(w, err)
		return
	}
	if err := cur.Validate(); err != nil {
		WriteError(w, BadBody("Payload validation error: '"+err.Error()+"'."))
		return
	}
	if err := a.attack.SetBruteForce(r.Context(), cur); err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, cur)
}

func (a *API) patchSuspiciousIP(w http.ResponseWriter, r *http.Request) {
	cur, err := a.attack.SuspiciousIP(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	if err := patchSettings(r, suspiciousIPProps, &cur); err != nil {
		WriteError(w, err)
		return
	}
	if err := cur.Validate(); err != nil {
		WriteError(w, BadBody("Payload validation error: '"+err.Error()+"'."))
		return
	}
	if err := a.attack.SetSuspiciousIP(r.Context(), cur); err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, cur)
}

// patchSettings merges the body into cur: objects merge property by
// property (so PATCH {"stage":{"pre-login":{"rate":1}}} keeps the other
// values), everything else is replaced. Types are checked strictly.
func patchSettings(r *http.Request, props []string, cur any) error {
	patch, err := decodeObject(r)
	if err != nil {
		return err
	}
	var unknown []string
	for k := range patch {
		if !slices.Contains(props, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return additionalProperties(unknown)
	}
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
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return BadBody("Payload validation error: 'Invalid type: expected " + te.Type.String() + "' on property " + te.Field + ".")
		}
		return BadBody("Payload validation error: '" + err.Error() + "'.")
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
