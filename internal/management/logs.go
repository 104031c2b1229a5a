package management

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) logRoutes(route routeFunc) {
	route("GET /api/v2/logs", "read:logs", a.listLogs)
	route("GET /api/v2/logs/{id}", "read:logs", a.getLog)
	route("GET /api/v2/users/{id}/logs", "read:logs", a.listUserLogs)
}

// Checkpoint reads (from/take), Auth0's way to export logs past the 1000
// records offset paging reaches.
const (
	defaultTake = 50
	maxTake     = 100
	// logSettle holds the newest events back from checkpoint reads. On
	// PostgreSQL an event's place in the order is taken when it is
	// inserted but seen only when its transaction commits, so a later
	// event can be seen first; an exporter that had read past it would
	// never see the earlier one. Events commit within milliseconds of
	// their date; 5 s covers that, and the clock drift of replicas, with
	// room.
	logSettle = 5 * time.Second
)

// logQSpecial are the Lucene operators and wildcards Gatehouse does not
// implement in a bare value of the logs q. "|" is left out: user ids
// hold it, and a lone "|" is no Lucene operator.
const logQSpecial = `!(){}[]^"~*?:\/&`

// listLogs is GET /api/v2/logs: with from, the events stored after that
// one (checkpoint); otherwise newest first, filtered by q=type:<code> or
// user_id:"<id>" (the subset of Auth0's log search Gatehouse indexes).
func (a *API) listLogs(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("from") {
		a.listLogsFrom(w, r)
		return
	}
	var f store.LogFilter
	if q := r.URL.Query().Get("q"); q != "" {
		m := qTerm.FindStringSubmatch(q)
		if m == nil || (m[1] != "type" && m[1] != "user_id") {
			WriteError(w, BadQuery("Gatehouse supports q with type:<code> or user_id:\"...\" for logs."))
			return
		}
		// An empty value would be no filter at all: a script's
		// user_id:"$ID" with ID unset would read every user's events.
		if m[2]+m[3] == "" {
			WriteError(w, BadQuery("The value of "+m[1]+" in q must not be empty."))
			return
		}
		// A bare value is one word to Lucene; its wildcards and
		// operators would match other events there, and nothing here.
		if bare := m[3]; strings.ContainsAny(bare, logQSpecial) || strings.HasPrefix(bare, "+") || strings.HasPrefix(bare, "-") {
			WriteError(w, BadQuery("The value of "+m[1]+" in q has a character Gatehouse does not support unquoted (wildcards, operators, escapes); quote the value."))
			return
		}
		// In a quoted value Lucene reads \ as an escape (user_id:"a\|b"
		// is a|b), where Gatehouse would look for the backslash.
		if strings.Contains(m[2], `\`) {
			WriteError(w, BadQuery("The value of "+m[1]+" in q has a backslash: Gatehouse does not support escapes."))
			return
		}
		if m[1] == "type" {
			f.Type = m[2] + m[3]
		} else {
			f.UserID = m[2] + m[3]
		}
	}
	a.writeLogs(w, r, f)
}

func (a *API) listUserLogs(w http.ResponseWriter, r *http.Request) {
	a.writeLogs(w, r, store.LogFilter{UserID: r.PathValue("id")})
}

// logSort reads sort, Auth0's field:1 or field:-1. Gatehouse orders logs
// by date only; another field is refused, not ignored, so that no answer
// comes in an order other than the one asked for.
func logSort(r *http.Request) (oldestFirst bool, err error) {
	switch s := r.URL.Query().Get("sort"); s {
	case "", "date:-1":
		return false, nil
	case "date:1":
		return true, nil
	default:
		return false, BadQuery("Query validation error: 'Gatehouse sorts logs by date only: date:1 or date:-1' on property sort.")
	}
}

func (a *API) writeLogs(w http.ResponseWriter, r *http.Request, f store.LogFilter) {
	p, err := parsePaging(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if f.OldestFirst, err = logSort(r); err != nil {
		WriteError(w, err)
		return
	}
	events, total, err := a.store.ListLogEvents(r.Context(), f, p.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items := make([]map[string]any, 0, len(events))
	for _, e := range events {
		items = append(items, filterFields(audit.Document(e), r))
	}
	writePage(w, p, "logs", items, total)
}

// listLogsFrom answers a checkpoint read as Auth0 does: a bare array in
// stored order, and a Link header whose next URL continues after the
// last event returned (or repeats this one when there was none). Other
// parameters are ignored.
func (a *API) listLogsFrom(w http.ResponseWriter, r *http.Request) {
	from := r.URL.Query().Get("from")
	if from == "" {
		WriteError(w, BadQuery("Query validation error: 'String is too short (0 chars), minimum 1' on property from."))
		return
	}
	take, err := queryInt(r, "take", defaultTake, 1, maxTake)
	if err != nil {
		WriteError(w, err)
		return
	}
	events, err := a.store.ListLogEventsAfter(r.Context(), from, a.now().Add(-logSettle), take)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, BadQuery("No log event has the id given in from; it may have passed the log retention."))
		return
	}
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items := make([]map[string]any, len(events))
	for i, e := range events {
		items[i] = audit.Document(e)
	}
	next := from
	if len(events) > 0 {
		next = events[len(events)-1].ID
	}
	q := url.Values{"from": {next}, "take": {strconv.Itoa(take)}}
	w.Header().Set("Link", "<"+a.issuer+"api/v2/logs?"+q.Encode()+`>; rel="next"`)
	WriteJSON(w, http.StatusOK, items)
}

func (a *API) getLog(w http.ResponseWriter, r *http.Request) {
	e, err := a.store.GetLogEvent(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, NotFound("The log event does not exist.", "inexistent_log"))
		return
	}
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, filterFields(audit.Document(e), r))
}
