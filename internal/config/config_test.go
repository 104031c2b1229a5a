package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.Issuer != "http://127.0.0.1:8080/" || c.Database != "sqlite:gatehouse.db" ||
		c.ManagementTokenLifetime != 24*time.Hour || c.SecretKeyFile() != "gatehouse.db.key" {
		t.Fatalf("%+v", c)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	BindFlags(fs)
	if err := fs.Parse([]string{"--addr", "127.0.0.1:9999"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs, env(map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:7777", "GATEHOUSE_LOG_FORMAT": "json"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" || c.LogFormat != "json" || c.Issuer != "http://127.0.0.1:9999/" {
		t.Fatalf("%+v", c)
	}
	if fs.Lookup("secret-key") != nil || fs.Lookup("admin-client-secret") != nil {
		t.Fatal("secrets must not be flags")
	}
}

// TestSetBy: a setting's source is its flag, else its variable, and ""
// for the default, which `serve --demo` replaces with a database of its own.
func TestSetBy(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, ""},
		{"empty variable", nil, map[string]string{"GATEHOUSE_DATABASE": ""}, ""},
		{"variable", nil, map[string]string{"GATEHOUSE_DATABASE": "sqlite:x.db"}, "GATEHOUSE_DATABASE"},
		{"flag", []string{"--database", "sqlite:y.db"}, map[string]string{"GATEHOUSE_DATABASE": "sqlite:x.db"}, "--database"},
		{"flag with the default's value", []string{"--database", "sqlite:gatehouse.db"}, nil, "--database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SetBy("GATEHOUSE_DATABASE"); got != tc.want {
				t.Errorf("SetBy(GATEHOUSE_DATABASE) = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidationNamesTheSetting(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GATEHOUSE_ADDR": "nonsense"}, "GATEHOUSE_ADDR"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com"}, "GATEHOUSE_ISSUER: must end in /"},
		{map[string]string{"GATEHOUSE_ISSUER": "http://id.example.com/"}, "GATEHOUSE_ISSUER: http:// is allowed only for loopback"},
		{map[string]string{"GATEHOUSE_ISSUER": "ftp://x/"}, "GATEHOUSE_ISSUER"},
		{map[string]string{"GATEHOUSE_DATABASE": "mysql://x"}, "GATEHOUSE_DATABASE"},
		{map[string]string{"GATEHOUSE_DATABASE": "sqlite:"}, "GATEHOUSE_DATABASE"},
		{map[string]string{"GATEHOUSE_DATABASE": "postgres://u@h/db"}, "GATEHOUSE_SECRET_KEY: required with PostgreSQL"},
		{map[string]string{"GATEHOUSE_ADMIN_CLIENT_ID": "x"}, "GATEHOUSE_ADMIN_CLIENT_ID"},
		{map[string]string{"GATEHOUSE_ADMIN_CLIENT_ID": "x", "GATEHOUSE_ADMIN_CLIENT_SECRET": "short"}, "GATEHOUSE_ADMIN_CLIENT_SECRET: must be at least 32"},
		{map[string]string{"GATEHOUSE_TLS_CERT": "/nonexistent.pem"}, "GATEHOUSE_TLS_CERT"},
		{map[string]string{"GATEHOUSE_LOG_FORMAT": "xml"}, "GATEHOUSE_LOG_FORMAT"},
		{map[string]string{"GATEHOUSE_LOG_LEVEL": "loud"}, "GATEHOUSE_LOG_LEVEL"},
		{map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8,banana"}, "GATEHOUSE_TRUSTED_PROXIES"},
		{map[string]string{"GATEHOUSE_MANAGEMENT_TOKEN_LIFETIME": "5"}, "GATEHOUSE_MANAGEMENT_TOKEN_LIFETIME"},
		{map[string]string{"GATEHOUSE_MANAGEMENT_TOKEN_LIFETIME": "soon"}, "GATEHOUSE_MANAGEMENT_TOKEN_LIFETIME"},
		{map[string]string{"GATEHOUSE_METRICS_ADDR": "9090"}, "GATEHOUSE_METRICS_ADDR: not a host:port address"},
		{map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:8080", "GATEHOUSE_METRICS_ADDR": "127.0.0.1:8080"}, "GATEHOUSE_METRICS_ADDR: must be another address than GATEHOUSE_ADDR"},
		{map[string]string{"GATEHOUSE_ADDR": ":8080", "GATEHOUSE_METRICS_ADDR": "127.0.0.1:8080"}, "GATEHOUSE_METRICS_ADDR: must be another address than GATEHOUSE_ADDR"},
		{map[string]string{"GATEHOUSE_ADDR": "10.0.0.1:8080", "GATEHOUSE_METRICS_ADDR": "0.0.0.0:8080"}, "GATEHOUSE_METRICS_ADDR: must be another address than GATEHOUSE_ADDR"},
		{map[string]string{"GATEHOUSE_LOG_RETENTION": "30"}, "GATEHOUSE_LOG_RETENTION: must be 0 (keep forever) or at least 1h"},
		{map[string]string{"GATEHOUSE_LOG_RETENTION": "-24h"}, "GATEHOUSE_LOG_RETENTION"},
		// 2^64 ns later than 2 hours: multiplied out, it wrapped around to 2h.
		{map[string]string{"GATEHOUSE_LOG_RETENTION": "18446751274"}, "GATEHOUSE_LOG_RETENTION: out of range"},
		{map[string]string{"GATEHOUSE_SHUTDOWN_TIMEOUT": "-18446744053"}, "GATEHOUSE_SHUTDOWN_TIMEOUT: out of range"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://user:pw@id.example.com/"}, "GATEHOUSE_ISSUER: must not hold a user or password"},
		{map[string]string{"GATEHOUSE_ISSUER": "HTTPS://id.example.com/"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://ID.example.com/"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com:99999/"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com//"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com/a/../"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com/%2e/"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com/a b/"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_ISSUER": "https://id.example.com/é/"}, "GATEHOUSE_ISSUER: must be in canonical form"},
		{map[string]string{"GATEHOUSE_UPSTREAM_HOSTS": "https://proxy.example.com,login.example.com"}, "GATEHOUSE_UPSTREAM_HOSTS: \"login.example.com\" is not a base URL"},
		{map[string]string{"GATEHOUSE_UPSTREAM_HOSTS": "http://entra-emulator:8081"}, "GATEHOUSE_UPSTREAM_HOSTS: \"http://entra-emulator:8081\": http:// is allowed only for loopback"},
		{map[string]string{"GATEHOUSE_UPSTREAM_HOSTS": "https://proxy.example.com/entra"}, "GATEHOUSE_UPSTREAM_HOSTS"},
		{map[string]string{"GATEHOUSE_UPSTREAM_HOSTS": "https://u:p@proxy.example.com"}, "GATEHOUSE_UPSTREAM_HOSTS"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			_, err := Load(nil, env(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestMetricsAddrAccepted: a metrics address on the public one's port is
// accepted where the two bind different addresses, IPv4 and IPv6 loopback
// included, and any port 0 picks a free one.
func TestMetricsAddrAccepted(t *testing.T) {
	for _, tc := range []struct{ addr, metrics string }{
		{"127.0.0.1:8080", "[::1]:8080"},
		{"[::1]:8080", "127.0.0.1:8080"},
		{"10.0.0.1:8080", "127.0.0.1:8080"},
		{"127.0.0.1:8080", "127.0.0.1:9090"},
		{":0", "127.0.0.1:0"},
	} {
		if _, err := Load(nil, env(map[string]string{"GATEHOUSE_ADDR": tc.addr, "GATEHOUSE_METRICS_ADDR": tc.metrics, "GATEHOUSE_ISSUER": "https://id.example.com/"})); err != nil {
			t.Errorf("%q beside %q: %v", tc.metrics, tc.addr, err)
		}
	}
}

// TestIssuerAccepted: the issuers the canonical-form check must let
// through.
func TestIssuerAccepted(t *testing.T) {
	for _, iss := range []string{"https://id.example.com/", "https://id.example.com:8443/tenant/a.b/", "http://localhost:8080/", "http://[::1]:8080/", "https://id.example.com/%C3%A9/"} {
		c, err := Load(nil, env(map[string]string{"GATEHOUSE_ISSUER": iss}))
		if err != nil || c.Issuer != iss {
			t.Errorf("%q: %v", iss, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,::1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 3 || c.TrustedProxies[1].String() != "192.168.1.7/32" || c.TrustedProxies[2].String() != "::1/128" {
		t.Fatalf("%v", c.TrustedProxies)
	}
	// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d, and
	// Gatehouse compares them unmapped: so must the configured prefixes be.
	c, err = Load(nil, env(map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "::ffff:10.0.0.0/104,::ffff:192.0.2.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0].String() != "10.0.0.0/8" || c.TrustedProxies[1].String() != "192.0.2.1/32" {
		t.Fatalf("%v", c.TrustedProxies)
	}
}

// TestTrustedProxiesMapped: IPv4-mapped entries are the IPv4 ones, as
// peers are compared unmapped.
func TestTrustedProxiesMapped(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "::ffff:10.0.0.7,::ffff:192.168.0.0/112,::ffff:0:0/90"}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.TrustedProxies) != "[10.0.0.7/32 192.168.0.0/16 ::ffc0:0:0/90]" {
		t.Fatalf("%v", c.TrustedProxies)
	}
}

func TestUpstreamHosts(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.UpstreamHosts != nil {
		t.Fatalf("default: %v %v", c, err)
	}
	c, err = Load(nil, env(map[string]string{"GATEHOUSE_UPSTREAM_HOSTS": " HTTPS://Proxy.Example.com:443/ ,, http://127.0.0.1:9999,https://proxy.example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://proxy.example.com", "http://127.0.0.1:9999"}; !slices.Equal(c.UpstreamHosts, want) {
		t.Fatalf("%q, want %q", c.UpstreamHosts, want)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	BindFlags(fs)
	if err := fs.Parse([]string{"--upstream-hosts", "ftp://x.example"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fs, env(nil)); err == nil || !strings.Contains(err.Error(), "--upstream-hosts: ") {
		t.Fatalf("err = %v, want it to name --upstream-hosts", err)
	}
}

// TestURLSettingsHideCredentials: a password typed into the issuer or an
// upstream host is refused without being repeated: the error goes to
// stderr, which containers ship to central logging.
func TestURLSettingsHideCredentials(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"GATEHOUSE_ISSUER", "ftp://user:hunter2pw@127.0.0.1:8080/"},
		{"GATEHOUSE_ISSUER", "https://user:hunter2pw@auth.example.com/%zz/"},
		// Typed without "//": no user info to redact, the whole is opaque
		// or a path.
		{"GATEHOUSE_ISSUER", "https:user:hunter2pw@auth.example.com/"},
		{"GATEHOUSE_ISSUER", "https//user:hunter2pw@auth.example.com/"},
		{"GATEHOUSE_UPSTREAM_HOSTS", "https://user:hunter2pw@proxy.example.com"},
		{"GATEHOUSE_UPSTREAM_HOSTS", "http://user:hunter2pw@proxy.example.com"},
		{"GATEHOUSE_UPSTREAM_HOSTS", "https://user:hunter2pw@proxy.example.com/%zz"},
	} {
		_, err := Load(nil, env(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.name+": ") || strings.Contains(err.Error(), "hunter2pw") {
			t.Errorf("%s=%s: err = %v, want a refusal naming the setting, without the password", tc.name, tc.value, err)
		}
	}
}

// TestMalformedMasterKeys: a malformed master key stops Load, naming the
// variable and never repeating the key, before serve opens the database.
func TestMalformedMasterKeys(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, value string }{
		{"GATEHOUSE_SECRET_KEY", "canary-not-a-key"},
		{"GATEHOUSE_SECRET_KEY_OLD", good + ",canary-not-a-key"},
	} {
		_, err := Load(nil, env(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.name+": ") || strings.Contains(err.Error(), "canary") {
			t.Errorf("%s: err = %v, want a refusal naming it without the key", tc.name, err)
		}
	}
	if _, err := Load(nil, env(map[string]string{"GATEHOUSE_SECRET_KEY": good, "GATEHOUSE_SECRET_KEY_OLD": good})); err != nil {
		t.Errorf("well-formed keys: %v", err)
	}
}

// TestDatabaseFlagRefusesPassword: a DSN with a password is refused as a
// flag (it would show in ps and shell history), without repeating it, and
// taken from the environment.
func TestDatabaseFlagRefusesPassword(t *testing.T) {
	key := map[string]string{"GATEHOUSE_SECRET_KEY": strings.Repeat("ab", 32)}
	for _, tc := range []struct {
		dsn     string
		refused bool
	}{
		{"postgres://gh:canary-pw@db.example.com/gatehouse", true},
		{"postgresql://gh:canary-pw@db.example.com/gatehouse", true},
		{"postgres://gh@db.example.com/gatehouse?sslmode=require&password=canary-pw", true},
		{"postgres://gh@db.example.com/gatehouse?sslmode=require", false},
		{"sqlite:gatehouse.db", false},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			BindFlags(fs)
			if err := fs.Parse([]string{"--database", tc.dsn}); err != nil {
				t.Fatal(err)
			}
			_, err := Load(fs, env(key))
			if !tc.refused {
				if err != nil {
					t.Fatalf("--database %s: %v", tc.dsn, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "--database: the DSN holds a password") {
				t.Fatalf("--database with a password: %v", err)
			}
			if strings.Contains(err.Error(), "canary-pw") {
				t.Fatalf("the error repeats the password: %v", err)
			}
			withEnv := map[string]string{"GATEHOUSE_DATABASE": tc.dsn}
			for k, v := range key {
				withEnv[k] = v
			}
			if _, err := Load(nil, env(withEnv)); err != nil {
				t.Fatalf("GATEHOUSE_DATABASE with a password: %v", err)
			}
		})
	}
}

// TestValidationNamesTheFlag: a bad value given as a flag is reported under
// the flag's name, the one the operator typed.
func TestValidationNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "nonsense"}, "--addr: not a host:port address"},
		{[]string{"--log-level", "loud"}, "--log-level: must be"},
		{[]string{"--database", "mysql://x"}, "--database: must start with"},
		{[]string{"--issuer", "http://id.example.com/"}, "--issuer: http:// is allowed only for loopback"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			_, err := Load(fs, env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
