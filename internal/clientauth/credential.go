package clientauth

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Algs are the assertion algorithms a credential may name, as at Auth0.
var Algs = []string{"RS256", "RS384", "PS256"}

// MinKeyBits refuses RSA keys weaker than Gatehouse's own.
const MinKeyBits = 2048

// ParsePEM reads an RSA public key from one PEM block: a public key
// (PKIX or PKCS #1) or an X.509 certificate, whose expiry it returns too.
// Its errors never quote the input: a private key pasted by mistake must
// not be echoed.
func ParsePEM(s string) (*rsa.PublicKey, *time.Time, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, errors.New("expected one PEM block")
	}
	var (
		key      any
		notAfter *time.Time
		err      error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key, notAfter = cert.PublicKey, &cert.NotAfter
		}
	default:
		return nil, nil, errors.New("expected a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block")
	}
	if err != nil {
		return nil, nil, errors.New("the PEM block does not parse")
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, nil, errors.New("the key is not an RSA key")
	}
	if pub.N.BitLen() < MinKeyBits {
		return nil, nil, fmt.Errorf("the RSA key has %d bits; at least %d are required", pub.N.BitLen(), MinKeyBits)
	}
	return pub, notAfter, nil
}
