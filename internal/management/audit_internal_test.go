package management

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// TestAuditedPanic: a write whose handler panics leaves its fapi event,
// as the 500 the server answers, and the panic still reaches the server.
func TestAuditedPanic(t *testing.T) {
	s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "g.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := New(Config{Logger: slog.New(slog.DiscardHandler), Audit: audit.NewRecorder(s)})
	h := a.audited("PATCH /api/v2/things/{id}", func(http.ResponseWriter, *http.Request) { panic("boom") })

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the handler's panic", v)
			}
		}()
		h(httptest.NewRecorder(), httptest.NewRequest(http.MethodPatch, "/api/v2/things/1", nil))
	}()

	events, _, err := s.ListLogEvents(t.Context(), store.LogFilter{Type: audit.FailedAPIOperation}, store.ListOptions{PerPage: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d fapi events, want 1", len(events))
	}
	var doc struct {
		Details struct {
			Response struct {
				StatusCode int `json:"statusCode"`
			} `json:"response"`
		} `json:"details"`
	}
	if err := json.Unmarshal(events[0].Doc, &doc); err != nil || doc.Details.Response.StatusCode != http.StatusInternalServerError {
		t.Errorf("event %s, want statusCode 500", events[0].Doc)
	}
}
