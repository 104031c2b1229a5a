package sqlstore_test

import (
	"encoding/json"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestLogBatchIsolation: one bad row fails a batch's INSERT; the batch is
// then written row by row, so only its own caller hears of the failure.
func TestLogBatchIsolation(t *testing.T) {
	s := storetest.Open(t, storetest.Postgres)
	ctx := t.Context()
	if err := s.AppendLogEvent(ctx, &store.LogEvent{ID: "taken", Type: "s"}); err != nil {
		t.Fatal(err)
	}
	events := []*store.LogEvent{
		{ID: "a", Type: "sertft", UserID: "u1", Doc: json.RawMessage(`{"n":1}`)},
		{ID: "taken", Type: "sertft"},
		{ID: "b", Type: "seccft"},
	}
	errs := sqlstore.WriteLogBatch(s, events)
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("outcomes %v; want only the second to fail", errs)
	}
	_, total, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
	if err != nil || total != 3 {
		t.Fatalf("%d events stored (%v), want 3", total, err)
	}
	got, _, err := s.ListLogEvents(ctx, store.LogFilter{Type: "sertft"}, store.ListOptions{})
	if err != nil || len(got) != 1 || got[0].ID != "a" || got[0].UserID != "u1" || string(got[0].Doc) != `{"n":1}` {
		t.Errorf("stored %+v (%v)", got, err)
	}

	errs = sqlstore.WriteLogBatch(s, []*store.LogEvent{{ID: "c", Type: "s"}, {ID: "d", Type: "s"}})
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("clean batch: %v", errs)
	}
}
