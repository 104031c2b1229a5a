package management_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// The properties of Auth0's signing key object (GET /api/v2/keys/signing,
// schema SigningKeys, additionalProperties false).
var signingKeyProps = []string{"kid", "cert", "pkcs7", "current", "next", "previous",
	"current_since", "current_until", "fingerprint", "thumbprint", "revoked", "revoked_at"}

// pemBody decodes Auth0's CRLF PEM of type typ and fails on anything else
// in the string.
func pemBody(t *testing.T, s, typ string) []byte {
	t.Helper()
	if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
		t.Errorf("%s PEM has bare LF line ends: %q", typ, s)
	}
	block, rest := pem.Decode([]byte(strings.ReplaceAll(s, "\r\n", "\n")))
	if block == nil || block.Type != typ || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not one %s PEM block: %q", typ, s)
	}
	return block.Bytes
}

// pkcs7Certs parses a PKCS #7 (RFC 2315) certs-only SignedData strictly,
// [0] EXPLICIT content included, and returns its certificates.
func pkcs7Certs(t *testing.T, der []byte) []*x509.Certificate {
	t.Helper()
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		t.Fatalf("pkcs7 ContentInfo: %v (%d trailing bytes)", err, len(rest))
	}
	if !ci.ContentType.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}) {
		t.Fatalf("pkcs7 content type %v, want signedData", ci.ContentType)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
		}
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos  asn1.RawValue
	}
	if ci.Content.Class != asn1.ClassContextSpecific || ci.Content.Tag != 0 || !ci.Content.IsCompound {
		t.Fatalf("pkcs7 content is not [0] EXPLICIT: %+v", ci.Content)
	}
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 {
		t.Fatalf("pkcs7 SignedData: %v (%d trailing bytes)", err, len(rest))
	}
	if sd.Version != 1 || sd.DigestAlgorithms.Tag != asn1.TagSet || len(sd.DigestAlgorithms.Bytes) != 0 ||
		!sd.ContentInfo.ContentType.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}) || len(sd.ContentInfo.Content.FullBytes) != 0 ||
		sd.SignerInfos.Tag != asn1.TagSet || len(sd.SignerInfos.Bytes) != 0 {
		t.Fatalf("pkcs7 is not a degenerate certs-only SignedData: %+v", sd)
	}
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil {
		t.Fatalf("pkcs7 certificates: %v", err)
	}
	return certs
}

// TestSigningKeyEncodings computes cert, pkcs7, fingerprint and
// thumbprint independently of Gatehouse, as Auth0 documents them (the
// certificate's SHA-1, colon-separated and plain upper-case hex), and checks
// that a key never carries more than Auth0's properties.
func TestSigningKeyEncodings(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			if status, _, raw := a.Do(t, "POST", "/api/v2/keys/signing/rotate", a.token, nil); status != http.StatusCreated {
				t.Fatalf("rotate: %d %s", status, raw)
			}
			_, _, raw := a.Do(t, "GET", "/.well-known/jwks.json", "", nil)
			var jwks struct {
				Keys []struct{ Kid, N, E string }
			}
			if err := json.Unmarshal(raw, &jwks); err != nil {
				t.Fatal(err)
			}
			status, _, raw := a.Do(t, "GET", "/api/v2/keys/signing", a.token, nil)
			var keys []map[string]any
			if err := json.Unmarshal(raw, &keys); status != http.StatusOK || err != nil || len(keys) != 3 {
				t.Fatalf("list: %d %v %s", status, err, raw)
			}
			for _, k := range keys {
				kid := k["kid"].(string)
				_, _, one := a.Do(t, "GET", "/api/v2/keys/signing/"+kid, a.token, nil)
				for _, body := range [][]byte{raw, one} {
					if bytes.Contains(bytes.ToUpper(body), []byte("PRIVATE")) {
						t.Errorf("key answer mentions private material: %s", body)
					}
				}
				var got map[string]any
				if err := json.Unmarshal(one, &got); err != nil {
					t.Fatal(err)
				}
				for prop := range got {
					if !slices.Contains(signingKeyProps, prop) {
						t.Errorf("key %s has property %q, not one of Auth0's", kid, prop)
					}
				}

				certDER := pemBody(t, got["cert"].(string), "CERTIFICATE")
				cert, err := x509.ParseCertificate(certDER)
				if err != nil {
					t.Fatalf("cert of %s: %v", kid, err)
				}
				sum := sha1.Sum(certDER)
				thumb := strings.ToUpper(hex.EncodeToString(sum[:]))
				var pairs []string
				for i := 0; i < len(thumb); i += 2 {
					pairs = append(pairs, thumb[i:i+2])
				}
				if got["thumbprint"] != thumb || got["fingerprint"] != strings.Join(pairs, ":") {
					t.Errorf("key %s: thumbprint %v fingerprint %v, want %s and %s", kid, got["thumbprint"], got["fingerprint"], thumb, strings.Join(pairs, ":"))
				}

				certs := pkcs7Certs(t, pemBody(t, got["pkcs7"].(string), "PKCS7"))
				if len(certs) != 1 || !bytes.Equal(certs[0].Raw, certDER) {
					t.Errorf("key %s: pkcs7 does not hold exactly its certificate", kid)
				}

				// The certificate is the key the JWKS publishes under kid.
				pub := cert.PublicKey.(*rsa.PublicKey)
				found := false
				for _, j := range jwks.Keys {
					if j.Kid != kid {
						continue
					}
					n, _ := base64.RawURLEncoding.DecodeString(j.N)
					e, _ := base64.RawURLEncoding.DecodeString(j.E)
					found = new(big.Int).SetBytes(n).Cmp(pub.N) == 0 && new(big.Int).SetBytes(e).Int64() == int64(pub.E)
				}
				if !found {
					t.Errorf("key %s: certificate is not the JWKS key of that kid", kid)
				}
			}
		})
	}
}

// TestRotateNeedsCreateAndUpdate: Auth0 rotates only for a token holding
// both create:signing_keys and update:signing_keys (operation
// post_signing_keys); one of them is refused and rotates nothing.
func TestRotateNeedsCreateAndUpdate(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			_, _, before := a.Do(t, "GET", "/api/v2/keys/signing", a.token, nil)
			for _, scopes := range [][]string{{"create:signing_keys"}, {"update:signing_keys"}, {"create:signing_keys", "read:signing_keys"}} {
				status, _, v := a.callWith(a.ManagementToken(t, scopes...), "POST", "/api/v2/keys/signing/rotate", nil)
				errorIs(t, status, v, http.StatusForbidden, "insufficient_scope",
					"Insufficient scope, expected all of: create:signing_keys,update:signing_keys")
			}
			if _, _, after := a.Do(t, "GET", "/api/v2/keys/signing", a.token, nil); !bytes.Equal(before, after) {
				t.Errorf("a refused rotation changed the keys:\n%s\n%s", before, after)
			}
			both := a.ManagementToken(t, "create:signing_keys", "update:signing_keys")
			if status, _, raw := a.Do(t, "POST", "/api/v2/keys/signing/rotate", both, nil); status != http.StatusCreated {
				t.Errorf("rotate with both scopes: %d %s", status, raw)
			}
		})
	}
}
