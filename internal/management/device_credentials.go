package management

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Device credentials are Auth0's older view of a user's refresh tokens,
// kept so that tools written against it can list and revoke them. A
// rotation family is one credential, named by the family's id, so that
// the credential keeps its id while its token rotates. Gatehouse stores
// no public-key device credentials, so it has no POST.
func (a *API) deviceCredentialRoutes(route routeFunc) {
	route("GET /api/v2/device-credentials", "read:device_credentials", a.listDeviceCredentials)
	route("DELETE /api/v2/device-credentials/{id}", "delete:device_credentials", a.deleteDeviceCredential)
}

const (
	credentialRefreshToken         = "refresh_token"
	credentialRotatingRefreshToken = "rotating_refresh_token"
	credentialPublicKey            = "public_key"
)

func deviceCredentialJSON(rt *store.RefreshToken) map[string]any {
	typ := credentialRefreshToken
	if rt.Rotating {
		typ = credentialRotatingRefreshToken
	}
	return map[string]any{"id": rt.FamilyID, "device_name": rt.LastUA, "type": typ, "user_id": rt.UserID, "client_id": rt.ClientID}
}

// listDeviceCredentials requires user_id, as Auth0 has since 2020
// (auth0/docs#9102); client_id and type narrow the list.
func (a *API) listDeviceCredentials(w http.ResponseWriter, r *http.Request) {
	p, err := parsePaging(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	q := r.URL.Query()
	f := store.RefreshTokenFilter{UserID: q.Get("user_id"), ClientID: q.Get("client_id")}
	if f.UserID == "" {
		WriteError(w, BadQuery("Query validation error: 'Missing required property: user_id'."))
		return
	}
	switch typ := q.Get("type"); typ {
	case "":
	case credentialRefreshToken, credentialRotatingRefreshToken:
		rotating := typ == credentialRotatingRefreshToken
		f.Rotating = &rotating
	case credentialPublicKey:
		writePage(w, p, "device_credentials", nil, 0)
		return
	default:
		WriteError(w, BadQuery(fmt.Sprintf("Query validation error: 'No enum match for: %q (expected one of %s, %s, %s)' on property type.",
			typ, credentialPublicKey, credentialRefreshToken, credentialRotatingRefreshToken)))
		return
	}
	list, total, err := a.store.ListRefreshTokens(r.Context(), f, p.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items := make([]map[string]any, len(list))
	for i, rt := range list {
		items[i] = deviceCredentialJSON(rt)
	}
	writePage(w, p, "device_credentials", items, total)
}

// deleteDeviceCredential revokes the credential's whole rotation family;
// the credential's id is the family's.
func (a *API) deleteDeviceCredential(w http.ResponseWriter, r *http.Request) {
	if err := a.store.RevokeRefreshTokenFamily(r.Context(), r.PathValue("id")); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			WriteError(w, NotFound("The device credential does not exist.", "inexistent_device_credential"))
			return
		}
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
