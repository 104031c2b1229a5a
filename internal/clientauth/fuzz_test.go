package clientauth

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzParseAssertion: whatever a caller sends as client_assertion, Parse
// and Verify return an error or a result, never panic, and never accept
// an assertion no key signed.
func FuzzParseAssertion(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
	if err != nil {
		f.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"iss":"c","sub":"c","aud":"https://t/","exp":4102444800,"jti":"j"}`))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := jws.CompactSerialize()
	f.Add(good)
	f.Add("a.b.c")
	f.Add(`eyJhbGciOiJub25lIn0.eyJpc3MiOiJjIiwic3ViIjoiYyJ9.`)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	keys := []Key{{KID: "", Alg: "RS256", Pub: &other.PublicKey}}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := Parse(raw)
		if err != nil {
			return
		}
		if a.ClientID == "" {
			t.Fatal("parsed an assertion without a client id")
		}
		if v, err := a.Verify(keys, []string{"https://t/"}, time.Unix(4102444700, 0)); err == nil {
			t.Fatalf("verified with a key that signed nothing: %+v", v)
		}
	})
}
