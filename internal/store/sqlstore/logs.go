package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const appendLogEventSQL = "INSERT INTO log_events (log_id, event_type, logged_at, user_id, doc) VALUES ($1, $2, $3, $4, $5)"

// AppendLogEvent stores e, giving it an ID (newLogID) and the current Date
// when the caller left them empty; ErrConflict if the ID exists.
// Concurrent appends share a commit: on SQLite as group-commit jobs, on
// PostgreSQL in one INSERT (log_batch.go).
func (s *Store) AppendLogEvent(ctx context.Context, e *store.LogEvent) error {
	var err error
	if s.logBatch != nil {
		var r logRow
		if r, err = newLogRow(e); err == nil {
			if err = s.appendLogBatched(ctx, r); err == nil {
				r.stored()
			}
		}
	} else {
		var stmts map[string]*sql.Stmt
		if stmts, err = s.hotTx(ctx, appendLogEventSQL); err == nil {
			err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				return appendLogEvent(ctx, hotTx{tx, stmts}, e)
			})
		}
	}
	if err != nil {
		return s.fail("append log event", err)
	}
	return nil
}

func appendLogEvent(ctx context.Context, q hotQuerier, e *store.LogEvent) error {
	r, err := newLogRow(e)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, appendLogEventSQL, r.args()...); err != nil {
		return err
	}
	r.stored()
	return nil
}

// logRow is a log event as appendLogEventSQL's arguments, with the ID and
// date filled in.
type logRow struct {
	e    *store.LogEvent
	id   string
	date time.Time
	doc  any
}

func newLogRow(e *store.LogEvent) (logRow, error) {
	doc, err := rawJSON("doc", e.Doc)
	if err != nil {
		return logRow{}, err
	}
	r := logRow{e: e, id: e.ID, date: e.Date, doc: doc}
	if r.date.IsZero() {
		r.date = now()
	}
	r.date = ms(r.date)
	if r.id == "" {
		r.id = newLogID(r.date)
	}
	return r, nil
}

// logIDAlphabet is rand.Text's alphabet in byte order, so that IDs sort
// as the numbers they encode.
const logIDAlphabet = "234567ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// newLogID is 26 characters of logIDAlphabet: the event's time in
// milliseconds (48 bits), then 82 random bits. Random IDs put every new
// event on a random page of log_id's unique index, one more page for
// each login's commit to write (and on PostgreSQL a full-page image
// after each checkpoint); IDs that grow with time append, and events of
// one commit share the index's last pages. Clients see an opaque string,
// as before; the time in it is the event's date, which the event shows
// anyway.
func newLogID(date time.Time) string {
	var b [17]byte // 136 bits, of which the ID takes the first 130
	msec := uint64(date.UnixMilli())
	for i := range 6 {
		b[i] = byte(msec >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:])
	var (
		out     [26]byte
		acc     uint64
		bits, j int
	)
	for _, x := range b {
		acc = acc<<8 | uint64(x)
		bits += 8
		for bits >= 5 && j < len(out) {
			bits -= 5
			out[j] = logIDAlphabet[acc>>bits&31]
			j++
		}
	}
	return string(out[:])
}

func (r logRow) args() []any {
	return []any{r.id, r.e.Type, r.date.UnixMilli(), r.e.UserID, r.doc}
}

// stored records in the event what was written.
func (r logRow) stored() { r.e.ID, r.e.Date = r.id, r.date }

const logCols = "log_id, event_type, logged_at, user_id, doc"

func scanLogEvent(row interface{ Scan(...any) error }) (*store.LogEvent, error) {
	var (
		e    store.LogEvent
		date int64
		doc  sql.NullString
	)
	if err := row.Scan(&e.ID, &e.Type, &date, &e.UserID, &doc); err != nil {
		return nil, err
	}
	e.Date = fromMS(date)
	e.Doc = fromRawJSON(doc)
	return &e, nil
}

func (s *Store) GetLogEvent(ctx context.Context, id string) (*store.LogEvent, error) {
	e, err := scanLogEvent(s.read.QueryRowContext(ctx, "SELECT "+logCols+" FROM log_events WHERE log_id = $1", id))
	if err != nil {
		return nil, s.fail("get log event", err)
	}
	return e, nil
}

// ListLogEventsAfter follows seq, the order the database stored events
// in, which no replica's clock can disturb. It stops at the first event
// not yet settled rather than filtering it out: dates and seq disagree
// (concurrent writers, replicas' clocks), and returning an older-dated
// event stored after it would move the reader's checkpoint past it.
func (s *Store) ListLogEventsAfter(ctx context.Context, afterID string, loggedBefore time.Time, limit int) ([]*store.LogEvent, error) {
	var es []*store.LogEvent
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var seq int64
		if err := tx.QueryRowContext(ctx, "SELECT seq FROM log_events WHERE log_id = $1", afterID).Scan(&seq); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+logCols+" FROM log_events WHERE seq > $1 ORDER BY seq LIMIT $2", seq, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		cut := ms(loggedBefore)
		for rows.Next() {
			e, err := scanLogEvent(rows)
			if err != nil {
				return err
			}
			if !e.Date.Before(cut) {
				break
			}
			es = append(es, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail("list log events after", err)
	}
	return es, nil
}

func (s *Store) ListLogEvents(ctx context.Context, f store.LogFilter, opts store.ListOptions) ([]*store.LogEvent, int, error) {
	w, order := s.logQuery(f)
	var (
		es    []*store.LogEvent
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		es, total, err = list(ctx, tx, logCols, "log_events", w, order, opts,
			func(r *sql.Rows) (*store.LogEvent, error) { return scanLogEvent(r) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list log events", err)
	}
	return es, total, nil
}

// logQuery is the WHERE and ORDER BY of f.
func (s *Store) logQuery(f store.LogFilter) (filter, string) {
	var w filter
	if f.Type != "" {
		w.eq("event_type", f.Type)
	}
	if f.UserID != "" {
		w.eq("user_id", f.UserID)
	}
	order := "logged_at DESC, seq DESC"
	if f.OldestFirst {
		order = "logged_at, seq"
	}
	return w, order
}

// logUserNamesSQL reads the user's events of one type backwards through
// log_events_user (user_id, logged_at). event_type is unindexed: its index
// would read every user's events of the type, and SQLite has no statistics
// to tell which range is the smaller.
func (s *Store) logUserNamesSQL() string {
	return "SELECT doc FROM log_events WHERE user_id = $1 AND " + s.d.unindexed("event_type") +
		" = $2 ORDER BY logged_at DESC LIMIT $3"
}

func (s *Store) LogUserNames(ctx context.Context, userID, eventType string, limit int) ([]string, error) {
	names, err := s.logUserNames(ctx, userID, eventType, limit)
	if err != nil {
		return nil, s.fail("log user names", err)
	}
	return names, nil
}

func (s *Store) logUserNames(ctx context.Context, userID, eventType string, limit int) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, s.logUserNamesSQL(), userID, eventType, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names := []string{}
	seen := map[string]bool{}
	for rows.Next() {
		var doc sql.NullString
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var ev struct {
			UserName string `json:"user_name"`
		}
		// An event's document is written by package audit; one that does
		// not parse names nobody.
		if !doc.Valid || json.Unmarshal([]byte(doc.String), &ev) != nil || ev.UserName == "" || seen[ev.UserName] {
			continue
		}
		seen[ev.UserName] = true
		names = append(names, ev.UserName)
	}
	return names, rows.Err()
}

const purgeLogEventsSQL = `DELETE FROM log_events WHERE seq IN (
	SELECT seq FROM log_events WHERE logged_at < $1 ORDER BY logged_at, seq LIMIT $2)`

// PurgeLogEvents deletes one bounded batch through the logged_at index,
// so that the write lock (SQLite) or the row locks (PostgreSQL) are held
// only briefly.
func (s *Store) PurgeLogEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.write.ExecContext(ctx, purgeLogEventsSQL, ms(before).UnixMilli(), limit)
	return s.count("purge log events", res, err)
}
