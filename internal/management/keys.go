package management

import (
	"context"
	"crypto/sha1"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// KeyRotator rotates and revokes the signing keys of this process, so
// that its own signer and JWKS change at once.
type KeyRotator interface {
	Rotate(ctx context.Context) (*store.SigningKey, error)
	Revoke(ctx context.Context, kid string) (*store.SigningKey, error)
}

func (a *API) signingKeyRoutes(route routeFunc) {
	route("GET /api/v2/keys/signing", "read:signing_keys", a.listSigningKeys)
	route("GET /api/v2/keys/signing/{kid}", "read:signing_keys", a.getSigningKey)
	// Auth0 rotates only with both scopes (operation post_signing_keys).
	route("POST /api/v2/keys/signing/rotate", "create:signing_keys update:signing_keys", a.rotateSigningKey)
	route("PUT /api/v2/keys/signing/{kid}/revoke", "update:signing_keys", a.revokeSigningKey)
}

func errNoSigningKey() *Error { return NotFound("Signing key not found", "inexistent_signing_key") }

// certPEM is the certificate as Auth0 renders it: PEM with CRLF lines.
func certPEM(der []byte, typ string) string {
	s := string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	return strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\r\n")
}

// pkcs7Of wraps the certificate in a degenerate PKCS #7 SignedData (no
// signers), the "certs-only" bundle Auth0 publishes as pkcs7.
func pkcs7Of(certDER []byte) ([]byte, error) {
	// encoding/asn1 writes a RawValue as it is, ignoring the field's tag
	// options, so the [0] EXPLICIT wrapper of ContentInfo.content is
	// built here rather than declared.
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"optional"`
	}
	type signedData struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      contentInfo
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos      asn1.RawValue
	}
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: []byte{}}
	sd, err := asn1.Marshal(signedData{
		Version:          1,
		DigestAlgorithms: emptySet,
		ContentInfo:      contentInfo{ContentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certDER},
		SignerInfos:      emptySet,
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{
		ContentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2},
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd},
	})
}

func signingKeyJSON(k *store.SigningKey) (map[string]any, error) {
	p7, err := pkcs7Of(k.CertDER)
	if err != nil {
		return nil, internalError(err)
	}
	// fingerprint and thumbprint are the certificate's SHA-1, as Auth0
	// shows them; they name the certificate and protect nothing.
	sum := sha1.Sum(k.CertDER)
	hexSum := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, len(sum))
	for i := range sum {
		pairs[i] = hexSum[2*i : 2*i+2]
	}
	doc := map[string]any{
		"kid":         k.KID,
		"cert":        certPEM(k.CertDER, "CERTIFICATE"),
		"pkcs7":       certPEM(p7, "PKCS7"),
		"current":     k.State == store.KeyCurrent,
		"next":        k.State == store.KeyNext,
		"previous":    k.State == store.KeyPrevious,
		"fingerprint": strings.Join(pairs, ":"),
		"thumbprint":  hexSum,
		"revoked":     k.State == store.KeyRevoked || k.RevokedAt != nil,
	}
	if k.CurrentSince != nil {
		doc["current_since"] = isoTime(*k.CurrentSince)
	}
	if k.CurrentUntil != nil {
		doc["current_until"] = isoTime(*k.CurrentUntil)
	}
	if k.RevokedAt != nil {
		doc["revoked_at"] = isoTime(*k.RevokedAt)
	}
	return doc, nil
}

func (a *API) listSigningKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.store.ListSigningKeys(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		doc, err := signingKeyJSON(k)
		if err != nil {
			WriteError(w, err)
			return
		}
		out = append(out, doc)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *API) getSigningKey(w http.ResponseWriter, r *http.Request) {
	keys, err := a.store.ListSigningKeys(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	for _, k := range keys {
		if k.KID == r.PathValue("kid") {
			doc, err := signingKeyJSON(k)
			if err != nil {
				WriteError(w, err)
				return
			}
			WriteJSON(w, http.StatusOK, doc)
			return
		}
	}
	WriteError(w, errNoSigningKey())
}

// rotateSigningKey answers with the new next key, as Auth0 does.
func (a *API) rotateSigningKey(w http.ResponseWriter, r *http.Request) {
	next, err := a.keys.Rotate(r.Context())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"cert": certPEM(next.CertDER, "CERTIFICATE"), "kid": next.KID})
}

func (a *API) revokeSigningKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.keys.Revoke(r.Context(), r.PathValue("kid"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, errNoSigningKey())
		return
	case errors.Is(err, store.ErrKeyInUse):
		WriteError(w, &Error{Status: http.StatusBadRequest, ErrorCode: "invalid_operation",
			Message: "The current and the next signing key cannot be revoked; rotate first, then revoke the previous key."})
		return
	case err != nil:
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"cert": certPEM(k.CertDER, "CERTIFICATE"), "kid": k.KID})
}
