package sqlstore

import (
	"context"
	"time"
)

// Log appends on PostgreSQL are batched. On their own, N concurrent
// appends are N statements, each a commit that waits for the WAL to reach
// the disk; together they become one INSERT of N rows, one round trip and
// one commit. As with the SQLite group commit, whatever arrives while one
// batch is written becomes the next batch, so a quiet server writes each
// event at once, and each caller hears of its event only after the commit
// that made it durable. A batch that fails (one bad row fails the whole
// INSERT) is written again row by row, so that each caller hears only of
// its own event.

// maxLogBatch bounds a batch's statement.
const maxLogBatch = 256

// logBatchTimeout bounds one batch: appends wait on the batch before them,
// so a stuck INSERT must not hold every later request with it. Those it
// fails get the error; a grant whose event is lost still succeeds.
const logBatchTimeout = 30 * time.Second

// appendLogBatchSQL inserts the rows of parallel arrays.
const appendLogBatchSQL = `INSERT INTO log_events (log_id, event_type, logged_at, user_id, doc)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])`

type logAppend struct {
	r    logRow
	done chan error
}

func (s *Store) startLogBatches() {
	s.logBatch = newBatcher(maxLogBatch, s.writeLogBatch)
}

// stopLogBatches waits for the batch in progress; appends after it get
// errStoreClosed.
func (s *Store) stopLogBatches() {
	if s.logBatch != nil {
		s.logBatch.close()
	}
}

// appendLogBatched hands r to the batcher and waits for its outcome. Once
// handed over, the event is written whatever becomes of ctx: an audit
// event is not dropped because its request ended.
func (s *Store) appendLogBatched(ctx context.Context, r logRow) error {
	a := &logAppend{r: r, done: make(chan error, 1)}
	if err := s.logBatch.submit(ctx, a); err != nil {
		return err
	}
	return <-a.done
}

func (s *Store) writeLogBatch(batch []*logAppend) {
	ctx, cancel := context.WithTimeout(context.Background(), logBatchTimeout)
	defer cancel()
	if len(batch) == 1 {
		_, err := s.write.ExecContext(ctx, appendLogEventSQL, batch[0].r.args()...)
		batch[0].done <- err
		return
	}
	var (
		ids, types, users = make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch))
		dates             = make([]int64, len(batch))
		docs              = make([]*string, len(batch))
	)
	for i, a := range batch {
		ids[i], types[i], dates[i], users[i] = a.r.id, a.r.e.Type, a.r.date.UnixMilli(), a.r.e.UserID
		if d, ok := a.r.doc.(string); ok {
			docs[i] = &d
		}
	}
	if _, err := s.write.ExecContext(ctx, appendLogBatchSQL, ids, types, dates, users, docs); err == nil {
		for _, a := range batch {
			a.done <- nil
		}
		return
	}
	for _, a := range batch {
		_, err := s.write.ExecContext(ctx, appendLogEventSQL, a.r.args()...)
		a.done <- err
	}
}
