package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPanicAnswer: a handler that panics before answering gets a 500 in
// the Authentication API's error format, with no-store like every other
// error, and the panic is logged.
func TestPanicAnswer(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ts := httptest.NewServer(withCommon(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		panic("boom")
	}), logger, false, nil))
	t.Cleanup(ts.Close)

	resp, err := http.Post(ts.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=password"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("body is not JSON: %q", raw)
	}
	h := resp.Header
	if resp.StatusCode != 500 || body["error"] != "server_error" || body["error_description"] != "Internal error." ||
		h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("panic answer: %d %v %s", resp.StatusCode, h, raw)
	}
	if !strings.Contains(logs.String(), "panic serving request") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

// TestPanicAnswerManagementAPI: under /api/v2/ the 500 of a panic is in
// the Management API's error format, which its SDKs parse, and names
// nothing of the panic.
func TestPanicAnswerManagementAPI(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	ts := httptest.NewServer(withCommon(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom: internal detail")
	}), logger, false, nil))
	t.Cleanup(ts.Close)

	resp, err := http.Post(ts.URL+"/api/v2/clients", "application/json", strings.NewReader(`{"name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("body is not JSON: %q", raw)
	}
	if resp.StatusCode != 500 || body["statusCode"] != float64(500) || body["error"] != "Internal Server Error" ||
		body["message"] != "Internal error" || resp.Header.Get("Cache-Control") != "no-store" ||
		strings.Contains(string(raw), "boom") || strings.Contains(string(raw), "panic") {
		t.Errorf("panic answer: %d %v %s", resp.StatusCode, resp.Header, raw)
	}
}
