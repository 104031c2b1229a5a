package management

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientauth"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// Client credentials are the public keys a client signs its
// private_key_jwt assertions with (Auth0's /clients/{id}/credentials). A
// credential is only stored here; the client accepts it once its
// client_authentication_methods name it (clients.go).
func (a *API) clientCredentialRoutes(route routeFunc) {
	route("GET /api/v2/clients/{id}/credentials", "read:client_credentials", a.listClientCredentials)
	route("POST /api/v2/clients/{id}/credentials", "create:client_credentials", a.createClientCredential)
	route("GET /api/v2/clients/{id}/credentials/{cid}", "read:client_credentials", a.getClientCredential)
	route("PATCH /api/v2/clients/{id}/credentials/{cid}", "update:client_credentials", a.updateClientCredential)
	route("DELETE /api/v2/clients/{id}/credentials/{cid}", "delete:client_credentials", a.deleteClientCredential)
}

func errNoCredential() *Error {
	return NotFound("The credential does not exist", "inexistent_credential")
}

// credentialJSON never includes the PEM: it is not secret, but Auth0 does
// not return it either.
func credentialJSON(cr *store.ClientCredential) map[string]any {
	obj := map[string]any{
		"id": cr.ID, "name": cr.Name, "kid": cr.KID, "alg": cr.Alg, "credential_type": cr.CredentialType,
		"created_at": isoTime(cr.CreatedAt), "updated_at": isoTime(cr.UpdatedAt),
	}
	if cr.ExpiresAt != nil {
		obj["expires_at"] = isoTime(*cr.ExpiresAt)
	}
	return obj
}

// clientFor answers 404 for an unknown client and reports whether to go on.
func (a *API) clientFor(w http.ResponseWriter, r *http.Request) (*store.Client, bool) {
	c, err := a.store.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, clientStoreError(err))
		return nil, false
	}
	return c, true
}

func (a *API) listClientCredentials(w http.ResponseWriter, r *http.Request) {
	c, ok := a.clientFor(w, r)
	if !ok {
		return
	}
	list, err := a.store.ListClientCredentials(r.Context(), c.ClientID)
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	out := make([]map[string]any, len(list))
	for i, cr := range list {
		out[i] = credentialJSON(cr)
	}
	WriteJSON(w, http.StatusOK, out)
}

var credentialFieldTypes = map[string]string{
	"credential_type": "string", "name": "string", "pem": "string", "alg": "string",
	"parse_expiry_from_cert": "boolean", "expires_at": "string",
}

func (a *API) createClientCredential(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	c, ok := a.clientFor(w, r)
	if !ok {
		return
	}
	cr, err := a.newCredential(c.ClientID, body, "")
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := a.store.CreateClientCredential(r.Context(), cr); err != nil {
		WriteError(w, clientStoreError(err))
		return
	}
	WriteJSON(w, http.StatusCreated, credentialJSON(cr))
}

// newCredential checks a credential's properties, as POSTed or given
// inline when a client is created (at prefix, e.g.
// "client_authentication_methods.private_key_jwt.credentials[0]."), and
// returns the credential to store.
func (a *API) newCredential(clientID string, body map[string]any, prefix string) (*store.ClientCredential, error) {
	if err := checkTypes(body, credentialFieldTypes); err != nil {
		return nil, err
	}
	for _, k := range []string{"credential_type", "pem"} {
		if _, ok := body[k]; !ok {
			return nil, BadBody("Payload validation error: 'Missing required property: " + prefix + k + "'.")
		}
	}
	if typ := body["credential_type"].(string); typ != "public_key" {
		// x509_cert and cert_subject_dn are for mTLS, which Gatehouse does
		// not terminate.
		return nil, enumError(prefix+"credential_type", typ, []string{"public_key"})
	}
	cr := &store.ClientCredential{ID: "cred_" + randomAlnum(22), ClientID: clientID, CredentialType: "public_key", Alg: "RS256", PEM: body["pem"].(string)}
	if v, ok := body["name"]; ok {
		cr.Name = v.(string)
	}
	if v, ok := body["alg"]; ok {
		if cr.Alg = v.(string); !slices.Contains(clientauth.Algs, cr.Alg) {
			return nil, enumError(prefix+"alg", cr.Alg, clientauth.Algs)
		}
	}
	pub, notAfter, err := clientauth.ParsePEM(cr.PEM)
	if err != nil {
		return nil, BadBody("Payload validation error: '" + err.Error() + "' on property " + prefix + "pem.")
	}
	// The kid is the key's RFC 7638 thumbprint: the same key, the same kid.
	cr.KID = tokens.Thumbprint(pub)
	if parse, _ := body["parse_expiry_from_cert"].(bool); parse {
		if notAfter == nil {
			return nil, BadBody("Payload validation error: 'parse_expiry_from_cert needs an X.509 certificate' on property " + prefix + "pem.")
		}
		cr.ExpiresAt = notAfter
	}
	if v, ok := body["expires_at"]; ok {
		if cr.ExpiresAt != nil {
			return nil, BadBody("Payload validation error: 'expires_at and parse_expiry_from_cert are mutually exclusive'.")
		}
		if cr.ExpiresAt, err = a.futureTime(prefix+"expires_at", v.(string)); err != nil {
			return nil, err
		}
	}
	return cr, nil
}

// futureTime parses an ISO 8601 instant that must lie ahead.
func (a *API) futureTime(prop, s string) (*time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, BadBody(fmt.Sprintf("Payload validation error: 'Object didn't pass validation for format date-time: %s' on property %s.", s, prop))
	}
	if !t.After(a.now()) {
		return nil, BadBody(fmt.Sprintf("Payload validation error: 'The date must be in the future' on property %s.", prop))
	}
	return &t, nil
}

func (a *API) credentialFor(w http.ResponseWriter, r *http.Request) (*store.ClientCredential, bool) {
	cr, err := a.store.GetClientCredential(r.Context(), r.PathValue("id"), r.PathValue("cid"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, errNoCredential())
		return nil, false
	case err != nil:
		WriteError(w, internalError(err))
		return nil, false
	}
	return cr, true
}

func (a *API) getClientCredential(w http.ResponseWriter, r *http.Request) {
	if cr, ok := a.credentialFor(w, r); ok {
		WriteJSON(w, http.StatusOK, credentialJSON(cr))
	}
}

// updateClientCredential changes expires_at, the only property Auth0 lets
// change; null removes the expiry.
func (a *API) updateClientCredential(w http.ResponseWriter, r *http.Request) {
	raw, err := readJSONBody(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var body map[string]json.RawMessage
	if err := decodeJSON(raw, &body); err != nil || body == nil {
		WriteError(w, BadBody("Payload validation error: 'Expected type object'."))
		return
	}
	for k := range body {
		if k != "expires_at" {
			WriteError(w, additionalProperties([]string{k}))
			return
		}
	}
	cr, ok := a.credentialFor(w, r)
	if !ok {
		return
	}
	if v, ok := body["expires_at"]; ok {
		var s *string
		if err := json.Unmarshal(v, &s); err != nil {
			WriteError(w, BadBody("Payload validation error: 'Expected type string or null' on property expires_at."))
			return
		}
		cr.ExpiresAt = nil
		if s != nil {
			if cr.ExpiresAt, err = a.futureTime("expires_at", *s); err != nil {
				WriteError(w, err)
				return
			}
		}
	}
	if err := a.store.UpdateClientCredential(r.Context(), cr); err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, credentialJSON(cr))
}

// deleteClientCredential refuses a credential the client still accepts:
// the client must stop naming it first, so that removing a key never
// leaves a configuration that names a missing one.
func (a *API) deleteClientCredential(w http.ResponseWriter, r *http.Request) {
	c, ok := a.clientFor(w, r)
	if !ok {
		return
	}
	cid := r.PathValue("cid")
	if slices.Contains(c.PrivateKeyJWTCredentials, cid) {
		WriteError(w, &Error{Status: http.StatusBadRequest, Message: "The credential is enabled in the client's client_authentication_methods; remove it there first.", ErrorCode: "credential_in_use"})
		return
	}
	switch err := a.store.DeleteClientCredential(r.Context(), c.ClientID, cid); {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, errNoCredential())
	case err != nil:
		WriteError(w, internalError(err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
