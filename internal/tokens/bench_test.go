package tokens

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkSign and BenchmarkRSASignRaw side by side show what a token
// costs beyond the RSA signature it cannot avoid.
func BenchmarkSign(b *testing.B) {
	k := shared(b)
	claims := validClaims(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(claims); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRSASignRaw(b *testing.B) {
	priv := shared(b).set.Load().signer.priv
	digest := sha256.Sum256([]byte("header.payload"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignParallel(b *testing.B) {
	k := shared(b)
	claims := validClaims(time.Now())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Sign(claims); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkParseJWT(b *testing.B) {
	k := shared(b)
	now := time.Now()
	tok, err := k.Sign(validClaims(now))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.ParseJWT(context.Background(), tok, testIssuer, testAudience, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
