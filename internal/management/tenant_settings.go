package management

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// tenantSettingTypes lists the tenant settings Gatehouse accepts and their
// JSON types. Unknown properties are refused, as Auth0 does.
var tenantSettingTypes = map[string]string{
	"friendly_name":           "string",
	"picture_url":             "string",
	"support_email":           "string",
	"support_url":             "string",
	"default_directory":       "string",
	"default_audience":        "string",
	"default_redirection_uri": "string",
	"allowed_logout_urls":     "array",
	"enabled_locales":         "array",
	"session_lifetime":        "number",
	"idle_session_lifetime":   "number",
	"sandbox_version":         "string",
	"flags":                   "object",
}

// passwordStrategies may be the tenant's default directory (Auth0 tenant
// settings: "Default Directory"); of them, Gatehouse implements waad.
var passwordStrategies = []string{"waad"}

func (a *API) tenantSettingsRoutes(route routeFunc) {
	route("GET /api/v2/tenants/settings", "read:tenant_settings", a.getTenantSettings)
	route("PATCH /api/v2/tenants/settings", "update:tenant_settings", a.patchTenantSettings)
}

// loadTenantSettings returns the settings document and when it was
// written (zero: never).
func (a *API) loadTenantSettings(r *http.Request) (map[string]any, time.Time, error) {
	s, err := a.store.GetTenantSettings(r.Context())
	if err != nil {
		return nil, time.Time{}, internalError(err)
	}
	doc := map[string]any{}
	if len(s.Doc) > 0 {
		if err := json.Unmarshal(s.Doc, &doc); err != nil {
			return nil, time.Time{}, internalError(fmt.Errorf("tenant settings: %w", err))
		}
	}
	return doc, s.UpdatedAt, nil
}

func (a *API) getTenantSettings(w http.ResponseWriter, r *http.Request) {
	doc, _, err := a.loadTenantSettings(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, filterFields(doc, r))
}

// patchTenantSettings merges the given top-level properties into the
// settings; null removes one.
func (a *API) patchTenantSettings(w http.ResponseWriter, r *http.Request) {
	patch, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := a.validateTenantSettings(r, patch); err != nil {
		WriteError(w, err)
		return
	}
	var doc map[string]any
	err = retryConflicts(func() error {
		var read time.Time
		if doc, read, err = a.loadTenantSettings(r); err != nil {
			return err
		}
		for k, v := range patch {
			if v == nil {
				delete(doc, k)
			} else {
				doc[k] = v
			}
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return internalError(err)
		}
		return a.store.PutTenantSettings(r.Context(), &store.TenantSettings{Doc: raw, UpdatedAt: read})
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		WriteError(w, errBusy("tenant settings", err))
	case err != nil:
		WriteError(w, err)
	default:
		WriteJSON(w, http.StatusOK, doc)
	}
}

func (a *API) validateTenantSettings(r *http.Request, patch map[string]any) error {
	var unknown []string
	for k := range patch {
		if _, ok := tenantSettingTypes[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return additionalProperties(unknown)
	}
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := patch[k]
		if v == nil {
			continue
		}
		if want := tenantSettingTypes[k]; jsonType(v) != want {
			return propertyError(k, want, v)
		}
	}
	if name, ok := patch["default_directory"].(string); ok && name != "" {
		c, err := a.store.GetConnectionByName(r.Context(), name)
		if errors.Is(err, store.ErrNotFound) {
			return BadBody(fmt.Sprintf("Payload validation error: 'The connection %q does not exist' on property default_directory.", name))
		}
		if err != nil {
			return internalError(err)
		}
		if !slices.Contains(passwordStrategies, c.Strategy) {
			return BadBody(fmt.Sprintf("Payload validation error: 'Connection %q (strategy %s) does not support the password grant' on property default_directory.", name, c.Strategy))
		}
	}
	return nil
}
