package management

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) logRoutes(route routeFunc) {
	route("GET /api/v2/logs", "read:logs", a.listLogs)
	route("GET /api/v2/users/{id}/logs", "read:logs", a.listUserLogs)
}

// listLogs is GET /api/v2/logs, newest first, filtered by q=type:<code>
// or user_id:"<id>" (the subset of Auth0's log search Gatehouse indexes).
func (a *API) listLogs(w http.ResponseWriter, r *http.Request) {
	var f store.LogFilter
	if q := r.URL.Query().Get("q"); q != "" {
		m := qTerm.FindStringSubmatch(q)
		if m == nil || (m[1] != "type" && m[1] != "user_id") {
			WriteError(w, BadQuery("Gatehouse supports q with type:<code> or user_id:\"...\" for logs."))
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

func (a *API) writeLogs(w http.ResponseWriter, r *http.Request, f store.LogFilter) {
	p, err := parsePaging(r)
	if err != nil {
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
