package clientauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParsePEM(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second).UTC()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "batch"}, NotBefore: time.Now(), NotAfter: notAfter}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	for _, c := range []struct {
		name, pem string
		expiry    bool
		err       string
	}{
		{"PKIX public key", enc("PUBLIC KEY", spki), false, ""},
		{"PKCS #1 public key", enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&key.PublicKey)), false, ""},
		{"certificate", enc("CERTIFICATE", certDER), true, ""},
		{"private key", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), false, "expected a PUBLIC KEY"},
		{"two blocks", enc("PUBLIC KEY", spki) + enc("PUBLIC KEY", spki), false, "one PEM block"},
		{"garbage in a block", enc("PUBLIC KEY", []byte("nope")), false, "does not parse"},
		{"not PEM", "ssh-rsa AAAA", false, "one PEM block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub, exp, err := ParsePEM(c.pem)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || pub.N.Cmp(key.N) != 0 {
				t.Fatalf("ParsePEM: %v", err)
			}
			if c.expiry != (exp != nil) || (exp != nil && !exp.Equal(notAfter)) {
				t.Errorf("expiry %v, want it only for the certificate (%v)", exp, notAfter)
			}
		})
	}
}
