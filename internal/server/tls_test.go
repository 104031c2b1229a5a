package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// to dir as name.crt and name.key.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func tlsConfig(t *testing.T, dir, certFile, keyFile string) *config.Config {
	return &config.Config{
		Addr: "127.0.0.1:0", Issuer: "https://127.0.0.1:1/",
		Database:  "sqlite:" + filepath.Join(dir, "gatehouse.db"),
		LogFormat: "text", LogLevel: "debug", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
		AdminClientID: purgeAdminID, AdminClientSecret: purgeAdminSecret,
		SecretKey: strings.Repeat("0f", 32),
		TLSCert:   certFile, TLSKey: keyFile,
	}
}

// TestTLS: with GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY, the listener
// speaks TLS 1.2 and 1.3 only, sends HSTS, and a request in clear on the
// same port never reaches a handler: a client that forgot https:// gets
// an error, not a token.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "server")
	var logs syncBuffer
	s := testServer(t, tlsConfig(t, dir, certFile, keyFile), &logs)
	addr, cancel, done := serveLoopback(t, s)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := func(min, max uint16) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: min, MaxVersion: max}}}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		resp, err := client(v, v).Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("%s: %v", tls.VersionName(v), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS.Version != v || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
			t.Errorf("%s: %d, version %s, HSTS %q", tls.VersionName(v), resp.StatusCode, tls.VersionName(resp.TLS.Version), resp.Header.Get("Strict-Transport-Security"))
		}
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if resp, err := client(v, v).Get("https://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s: accepted", tls.VersionName(v))
		}
	}

	before := logs.String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := fmt.Sprintf("grant_type=client_credentials&client_id=%s&client_secret=%s&audience=https%%3A%%2F%%2F127.0.0.1%%3A1%%2Fapi%%2Fv2%%2F", purgeAdminID, purgeAdminSecret)
	fmt.Fprintf(c, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(raw), "access_token") {
		t.Errorf("token request in clear on the TLS port: %d %s", resp.StatusCode, raw)
	}
	if after := strings.TrimPrefix(logs.String(), before); strings.Contains(after, "path=/oauth/token") {
		t.Errorf("a request in clear reached the handler:\n%s", after)
	}
}

// TestTLSMismatchedPair: a certificate with another certificate's key
// stops Serve before it says it is listening or starts anything.
func TestTLSMismatchedPair(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := writeCert(t, dir, "a")
	_, keyFile, _ := writeCert(t, dir, "b")
	var logs syncBuffer
	s := testServer(t, tlsConfig(t, dir, certFile, keyFile), &logs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Serve(ctx, l)
	if err == nil || !strings.Contains(err.Error(), "GATEHOUSE_TLS_CERT") {
		t.Errorf("Serve: %v, want an error naming GATEHOUSE_TLS_CERT", err)
	}
	if strings.Contains(logs.String(), "gatehouse listening") {
		t.Errorf("logged that it listens, with a key that does not match the certificate:\n%s", logs.String())
	}
}
