package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// TestLogsCLI prints the newest events, then exports by checkpoint, once
// and following.
func TestLogsCLI(t *testing.T) {
	env := cliEnv(t, true)
	other, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	past := time.Now().Add(-time.Hour)
	for i, id := range []string{"e1", "e2", "e3"} {
		if err := other.AppendLogEvent(t.Context(), &store.LogEvent{ID: id, Type: "sertft", Date: past.Add(time.Duration(i) * time.Second), Doc: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(out string) []string {
		t.Helper()
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			got = append(got, e["log_id"].(string))
		}
		return got
	}

	out, errOut, err := runCLI(t, "", "logs", "--take", "2")
	if err != nil || len(ids(out)) != 2 {
		t.Fatalf("logs: %v %s\n%s", err, errOut, out)
	}
	out, errOut, err = runCLI(t, "", "logs", "--from", "e1", "--take", "1")
	if got := ids(out); err != nil || strings.Join(got, ",") != "e2,e3" {
		t.Fatalf("logs --from e1: %v %v %s", got, err, errOut)
	}

	cmd := newRootCmd()
	var buf bytes.Buffer
	cmd.SetArgs([]string{"logs", "--from", "e1", "--follow", "--every", "50ms"})
	cmd.SetOut(&buf)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("logs --follow: %v", err)
	}
	if got := ids(buf.String()); strings.Join(got, ",") != "e2,e3" {
		t.Errorf("logs --follow printed %v, want e2,e3 once each", got)
	}
	if _, _, err := runCLI(t, "", "logs", "--from", "nope"); err == nil || !strings.Contains(err.Error(), "No log event has the id") {
		t.Errorf("logs --from unknown: %v", err)
	}
}
