package tokens

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseJWT feeds arbitrary strings to the bearer-token parser: it must
// never panic, reject with a *TokenError, and accept only what we signed.
func FuzzParseJWT(f *testing.F) {
	k := shared(f)
	now := time.Now()
	good, err := k.Sign(validClaims(now))
	if err != nil {
		f.Fatal(err)
	}
	h, p, s := splitToken(good)
	f.Add(good)
	f.Add(h + "." + p + ".")
	f.Add(h + ".." + s)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.ParseJWT(context.Background(), tok, testIssuer, testAudience, now, 0)
		if err == nil {
			if tok != good || c.Subject != "m2m-client@clients" {
				t.Fatalf("forged token accepted: %q", tok)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("untyped error %v", err)
		}
		if len(tok) > 40 && strings.Contains(err.Error(), tok) {
			t.Fatal("error quotes the token")
		}
	})
}
