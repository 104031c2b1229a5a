package management

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Paging limits (reference §2.1): per_page defaults to 50 and may be at
// most 100; offset paging reaches the first 1000 records only, checkpoint
// paging (from/take) goes further (https://auth0.com/docs/api/management/v2,
// "Pagination": offset paging is for up to about 1,000 items, checkpoint
// paging for larger lists, take defaults to 50).
const (
	defaultPerPage = 50
	maxPerPage     = 100
	maxOffsetItems = 1000
)

// paging is the offset paging of one list request.
type paging struct {
	page, perPage int
	includeTotals bool
}

func (p paging) listOptions() store.ListOptions {
	return store.ListOptions{Page: p.page, PerPage: p.perPage}
}

// queryInt reads an optional integer query parameter in [minV, maxV].
func queryInt(r *http.Request, name string, def, minV, maxV int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, BadQuery(fmt.Sprintf("Query validation error: 'Expected type integer but found type string' on property %s.", name))
	}
	if n < minV {
		return 0, BadQuery(fmt.Sprintf("Query validation error: 'Value %d is less than minimum %d' on property %s.", n, minV, name))
	}
	if n > maxV {
		return 0, BadQuery(fmt.Sprintf("Query validation error: 'Value %d is greater than maximum %d' on property %s.", n, maxV, name))
	}
	return n, nil
}

// queryBool reads an optional boolean query parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	switch s := r.URL.Query().Get(name); s {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, BadQuery(fmt.Sprintf("Query validation error: 'Expected type boolean but found type string' on property %s.", name))
}

// parsePaging reads page, per_page and include_totals, and refuses a page
// beyond the records offset paging reaches.
func parsePaging(r *http.Request) (paging, error) {
	p, err := readPaging(r)
	if err != nil {
		return p, err
	}
	if p.pastOffsetLimit() {
		return p, &Error{Status: http.StatusBadRequest, Message: "Requesting page exceeds the allowed maximum of 1000 records.", ErrorCode: "invalid_paging"}
	}
	return p, nil
}

// parsePagingBesideCheckpoint is parsePaging for a list that also pages
// by checkpoint. Past the offset limit Auth0's message names the page and
// points at checkpoint paging: "Requesting page 10 exceeds the allowed
// maximum of 1000 records. To fetch results beyond 1000, use the
// checkpoint pagination method." (as reported from Auth0 in
// https://github.com/auth0/terraform-provider-auth0/issues/863 and
// https://github.com/auth0/auth0-python/issues/277).
func parsePagingBesideCheckpoint(r *http.Request) (paging, error) {
	p, err := readPaging(r)
	if err != nil {
		return p, err
	}
	if p.pastOffsetLimit() {
		return p, &Error{Status: http.StatusBadRequest, ErrorCode: "invalid_paging", Message: fmt.Sprintf(
			"Requesting page %d exceeds the allowed maximum of %d records. To fetch results beyond %d, use the checkpoint pagination method.",
			p.page, maxOffsetItems, maxOffsetItems)}
	}
	return p, nil
}

// pastOffsetLimit reports whether the page reaches beyond the records
// offset paging may return.
func (p paging) pastOffsetLimit() bool { return (p.page+1)*p.perPage > maxOffsetItems }

// readPaging reads page, per_page and include_totals.
func readPaging(r *http.Request) (paging, error) {
	var p paging
	var err error
	if p.page, err = queryInt(r, "page", 0, 0, 1<<30); err != nil {
		return p, err
	}
	if p.perPage, err = queryInt(r, "per_page", defaultPerPage, 1, maxPerPage); err != nil {
		return p, err
	}
	p.includeTotals, err = queryBool(r, "include_totals")
	return p, err
}

// writePage answers a list: the bare array, or with include_totals Auth0's
// envelope {"start","limit","length","total","<key>":[...]}.
func writePage(w http.ResponseWriter, p paging, key string, items []map[string]any, total int) {
	if items == nil {
		items = []map[string]any{}
	}
	if !p.includeTotals {
		WriteJSON(w, http.StatusOK, items)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"start":  p.page * p.perPage,
		"limit":  p.perPage,
		"length": len(items),
		"total":  total,
		key:      items,
	})
}

// checkpoint is checkpoint paging: take items after the position that
// from names. Gatehouse's "next" is an opaque token for an offset in the
// listing's creation order; items created while paging come at the end,
// so a forward walk sees each item that exists throughout at most once.
type checkpoint struct {
	offset, take int
}

// checkpointPrefix marks Gatehouse's opaque next tokens.
const checkpointPrefix = "o1:"

// parseCheckpoint reads from and take; ok is false when neither is given,
// which selects offset paging.
func parseCheckpoint(r *http.Request) (c checkpoint, ok bool, err error) {
	q := r.URL.Query()
	if !q.Has("from") && !q.Has("take") {
		return c, false, nil
	}
	if c.take, err = queryInt(r, "take", defaultPerPage, 1, maxPerPage); err != nil {
		return c, true, err
	}
	if from := q.Get("from"); from != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(from)
		n, aerr := strconv.Atoi(strings.TrimPrefix(string(raw), checkpointPrefix))
		if derr != nil || aerr != nil || !strings.HasPrefix(string(raw), checkpointPrefix) || n < 0 {
			return c, true, BadQuery("Query validation error: 'Invalid checkpoint' on property from.")
		}
		c.offset = n
	}
	return c, true, nil
}

// next is the token that continues after the items of this page.
func (c checkpoint) next(returned int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(checkpointPrefix + strconv.Itoa(c.offset+returned)))
}

// listOptions asks the store for the take records from the checkpoint's
// offset, whatever it is: from is the client's to choose.
func (c checkpoint) listOptions() store.ListOptions {
	return store.ListOptions{Offset: c.offset, PerPage: c.take}
}

// writeCheckpoint answers a checkpoint read: the page under key, and next
// while records remain past the n on it.
func writeCheckpoint(w http.ResponseWriter, cp checkpoint, key string, items any, n, total int) {
	body := map[string]any{key: items}
	if cp.offset+n < total {
		body["next"] = cp.next(n)
	}
	WriteJSON(w, http.StatusOK, body)
}
