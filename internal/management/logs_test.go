package management_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// TestLogCheckpoint walks the log as an exporter does, by from/take and
// the Link header, past events whose dates disagree with the order they
// were stored in; the newest seconds are held back.
func TestLogCheckpoint(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:logs")
			other := otherReplica(t, env)
			past := time.Now().Add(-time.Hour)
			for i, id := range []string{"e1", "e2", "e3", "e4", "e5", "fresh"} {
				at := past.Add(time.Duration(5-i) * time.Minute)
				if id == "fresh" {
					at = time.Now()
				}
				if err := other.AppendLogEvent(t.Context(), &store.LogEvent{ID: id, Type: "sertft", Date: at, Doc: json.RawMessage(`{"type":"sertft"}`)}); err != nil {
					t.Fatal(err)
				}
			}

			page := func(path string) ([]string, string) {
				t.Helper()
				ids, h := logIDs(t, env, tok, path)
				m := linkNext.FindStringSubmatch(h.Get("Link"))
				if m == nil || !strings.HasPrefix(m[1], env.URL+"api/v2/logs?") {
					t.Fatalf("GET %s: Link %q", path, h.Get("Link"))
				}
				return ids, strings.TrimPrefix(m[1], env.URL)
			}
			var walked []string
			next := "api/v2/logs?from=e1&take=2"
			for range 4 {
				ids, n := page(next)
				walked = append(walked, ids...)
				if len(ids) == 0 {
					if n != next {
						t.Errorf("an empty page's next %q, want the same %q", n, next)
					}
					break
				}
				next = n
			}
			if want := []string{"e2", "e3", "e4", "e5"}; !slices.Equal(walked, want) {
				t.Errorf("walked %v, want %v (stored order, the fresh event held back)", walked, want)
			}

			for path, want := range map[string]string{
				"api/v2/logs?from=nope":        "No log event has the id given in from",
				"api/v2/logs?from=e1&take=0":   "on property take",
				"api/v2/logs?from=e1&take=101": "on property take",
				"api/v2/logs?from=":            "on property from",
			} {
				status, _, raw := env.Do(t, "GET", path, tok, nil)
				if status != http.StatusBadRequest || !strings.Contains(string(raw), want) || !strings.Contains(string(raw), "invalid_query_string") {
					t.Errorf("GET %s: %d %s", path, status, raw)
				}
			}

			status, _, raw := env.Do(t, "GET", "api/v2/logs/e3", tok, nil)
			var e map[string]any
			if err := json.Unmarshal(raw, &e); status != http.StatusOK || err != nil || e["log_id"] != "e3" || e["type"] != "sertft" {
				t.Errorf("GET one: %d %s", status, raw)
			}
			if status, _, raw := env.Do(t, "GET", "api/v2/logs/nope", tok, nil); status != http.StatusNotFound || !strings.Contains(string(raw), "inexistent_log") {
				t.Errorf("GET unknown: %d %s", status, raw)
			}
		})
	}
}

// TestLogQuery: q filters by type or user, and a query that would filter
// nothing (an empty value) is refused rather than read as no filter.
func TestLogQuery(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:logs")
			other, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			for _, e := range []store.LogEvent{
				{ID: "a1", Type: "sepft", UserID: "waad|alice", Date: time.Now(), Doc: json.RawMessage(`{"type":"sepft","user_id":"waad|alice"}`)},
				{ID: "b1", Type: "fp", UserID: "waad|bob", Date: time.Now(), Doc: json.RawMessage(`{"type":"fp","user_id":"waad|bob"}`)},
			} {
				if err := other.AppendLogEvent(t.Context(), &e); err != nil {
					t.Fatal(err)
				}
			}
			ids := func(q string) []string {
				t.Helper()
				all, _ := logIDs(t, env, tok, "api/v2/logs?q="+url.QueryEscape(q))
				return slices.DeleteFunc(all, func(id string) bool { return id != "a1" && id != "b1" })
			}
			if got := ids(`user_id:"waad|alice"`); !slices.Equal(got, []string{"a1"}) {
				t.Errorf("user_id filter: %v, want [a1]", got)
			}
			if got := ids("user_id:waad|bob"); !slices.Equal(got, []string{"b1"}) {
				t.Errorf("bare user_id filter: %v, want [b1]", got)
			}
			if got := ids("type:fp"); !slices.Equal(got, []string{"b1"}) {
				t.Errorf("type filter: %v, want [b1]", got)
			}
			for _, q := range []string{`user_id:""`, `type:""`, `email:"x"`, "user_id:a AND type:fp", "type:s*", "type:f?", "type:fp~", `user_id:waad\|alice`, "type:(fp)", "type:-fp", `user_id:"waad\|alice"`, `user_id:"waad\\alice"`} {
				status, _, raw := env.Do(t, "GET", "api/v2/logs?q="+url.QueryEscape(q), tok, nil)
				if status != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_query_string") {
					t.Errorf("q=%s: %d %s, want 400 invalid_query_string", q, status, raw)
				}
			}
		})
	}
}

// TestLogCheckpointStopsAtUnsettled: a checkpoint read ends at the first
// event still held back. Stepping over it to an older-dated event stored
// after it would move the exporter's checkpoint past the held-back event,
// which it would then never read.
func TestLogCheckpointStopsAtUnsettled(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:logs")
			other := otherReplica(t, env)
			past := time.Now().Add(-time.Hour)
			for _, e := range []struct {
				id string
				at time.Time
			}{{"start", past}, {"fresh", time.Now()}, {"late", past.Add(time.Minute)}} {
				if err := other.AppendLogEvent(t.Context(), &store.LogEvent{ID: e.id, Type: "sertft", Date: e.at, Doc: json.RawMessage(`{"type":"sertft"}`)}); err != nil {
					t.Fatal(err)
				}
			}
			ids, h := logIDs(t, env, tok, "api/v2/logs?from=start&take=10")
			if len(ids) != 0 {
				t.Errorf("read %d events past the held-back one: %v", len(ids), ids)
			}
			if m := linkNext.FindStringSubmatch(h.Get("Link")); m == nil || !strings.Contains(m[1], "from=start&") {
				t.Errorf("Link %q, want the checkpoint kept at start", h.Get("Link"))
			}
		})
	}
}

// TestLogSort: sort=date:1 lists oldest first, on the tenant log and a
// user's; a sort Gatehouse does not implement is refused rather than
// ignored, which would answer in another order than asked.
func TestLogSort(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:logs")
			other := otherReplica(t, env)
			now := time.Now()
			for i, id := range []string{"old", "mid", "new"} {
				e := store.LogEvent{ID: id, Type: "fp", UserID: "waad|s", Date: now.Add(time.Duration(i-3) * time.Hour), Doc: json.RawMessage(`{"type":"fp"}`)}
				if err := other.AppendLogEvent(t.Context(), &e); err != nil {
					t.Fatal(err)
				}
			}
			ids := func(path string) []string {
				t.Helper()
				all, _ := logIDs(t, env, tok, path)
				return slices.DeleteFunc(all, func(id string) bool { return id != "old" && id != "mid" && id != "new" })
			}
			userLogs := "api/v2/users/" + url.PathEscape("waad|s") + "/logs"
			for path, want := range map[string][]string{
				"api/v2/logs":                                  {"new", "mid", "old"},
				"api/v2/logs?sort=date:-1":                     {"new", "mid", "old"},
				"api/v2/logs?sort=date:1":                      {"old", "mid", "new"},
				userLogs + "?sort=date:1":                      {"old", "mid", "new"},
				userLogs + "?sort=date:-1":                     {"new", "mid", "old"},
				"api/v2/logs?sort=date:1&q=type:fp&per_page=2": {"old", "mid"},
			} {
				if got := ids(path); !slices.Equal(got, want) {
					t.Errorf("GET %s: %v, want %v", path, got, want)
				}
			}
			for _, path := range []string{"api/v2/logs?sort=type:1", "api/v2/logs?sort=date", "api/v2/logs?sort=date:2", userLogs + "?sort=user_id:-1"} {
				status, _, raw := env.Do(t, "GET", path, tok, nil)
				if status != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_query_string") || !strings.Contains(string(raw), "on property sort") {
					t.Errorf("GET %s: %d %s, want 400 invalid_query_string on property sort", path, status, raw)
				}
			}
		})
	}
}

// otherReplica is a second store on env's database: it writes events with
// the dates a test needs, as another replica would.
func otherReplica(t *testing.T, env *servertest.Env) *sqlstore.Store {
	t.Helper()
	other, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// logIDs GETs a list of log events at path and returns their ids in
// order, with the response's headers.
func logIDs(t *testing.T, env *servertest.Env, token, path string) ([]string, http.Header) {
	t.Helper()
	status, h, raw := env.Do(t, "GET", path, token, nil)
	var events []map[string]any
	if err := json.Unmarshal(raw, &events); status != http.StatusOK || err != nil {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	ids := make([]string, 0, len(events))
	for _, e := range events {
		ids = append(ids, e["log_id"].(string))
	}
	return ids, h
}
