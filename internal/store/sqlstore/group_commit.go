package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
)

// Group commit for SQLite. Every SQLite write goes through the one writer
// connection, so concurrent logins queue there anyway; the token
// endpoint's small transactions (a login's attack-protection take and
// settlement, the user update with its log event, a refresh-token
// rotation) are therefore run together: whatever is waiting while one
// batch runs becomes the next batch, one transaction with each job in a
// SAVEPOINT of its own. N jobs share one BEGIN, one COMMIT and one WAL
// write of the pages they touch instead of N, and the commit's cost no
// longer grows with the load.
//
// Each job stays atomic (a failed job is rolled back to its savepoint and
// the others go on), and each caller hears of its write only after the
// COMMIT that made it durable, so nobody is told of a write that could
// still be lost. A job runs with its caller's context values but not its
// cancellation: SQLite rolls back the whole transaction when a write is
// interrupted, which here would undo other callers' jobs. A caller whose
// context ends before its job starts gets the context's error and its job
// never runs.

// maxGroup bounds a batch, and so how long the first job of a batch waits
// for the last one before its commit.
const maxGroup = 64

// errStoreClosed is what a write queued after Close gets.
var errStoreClosed = errors.New("store is closed")

const (
	savepointSQL  = "SAVEPOINT group_job"
	releaseSQL    = "RELEASE group_job"
	rollbackToSQL = "ROLLBACK TO group_job"
)

const (
	jobQueued int32 = iota
	jobStarted
	jobAbandoned
)

type groupJob struct {
	ctx   context.Context
	fn    func(context.Context, *sql.Tx) error
	state atomic.Int32
	done  chan error
}

func (s *Store) startGroupCommit() {
	s.group = newBatcher(maxGroup, func(batch []*groupJob) {
		s.commitGroup(batch)
		s.checkpointIfFull()
	})
}

// stopGroupCommit waits for the batch in progress; writes queued after it
// get errStoreClosed.
func (s *Store) stopGroupCommit() {
	if s.group != nil {
		s.group.close()
	}
}

// inGroupTx runs fn in a write transaction, batched with other callers'
// on SQLite, alone on PostgreSQL (which has many connections and groups
// its own commits). fn must use the context it is given, and must not
// prepare statements on the writer: its connection is held by the batch.
func (s *Store) inGroupTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if s.group == nil {
		return s.inTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	j := &groupJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	if err := s.group.submit(ctx, j); err != nil {
		return err
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return ctx.Err()
		}
		// Started: its outcome is about to be known, and must be reported.
		return <-j.done
	}
}

// commitGroup runs the batch's live jobs in one transaction and reports
// to each.
func (s *Store) commitGroup(batch []*groupJob) {
	jobs := batch[:0]
	for _, j := range batch {
		if j.ctx.Err() != nil {
			if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
				j.done <- j.ctx.Err()
			}
			continue
		}
		if j.state.CompareAndSwap(jobQueued, jobStarted) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return
	}
	ctx := context.Background()
	if len(jobs) == 1 {
		// Alone: no savepoint needed.
		j := jobs[0]
		j.done <- s.inTx(ctx, func(tx *sql.Tx) error { return j.fn(context.WithoutCancel(j.ctx), tx) })
		return
	}
	stmts, err := s.hotTx(ctx, savepointSQL, releaseSQL, rollbackToSQL)
	if err != nil {
		failAll(jobs, fmt.Errorf("group commit: %w", err))
		return
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		failAll(jobs, err)
		return
	}
	hot := hotTx{tx, stmts}
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		jctx := context.WithoutCancel(j.ctx)
		if errs[i] = runJob(jctx, hot, j.fn); errors.Is(errs[i], errBatchLost) {
			// The transaction is gone with every earlier job's work, so
			// none of the batch is written.
			errs[i] = errors.Join(errs[i], rollback(tx))
			for k, o := range jobs {
				if k != i {
					o.done <- errBatchLost
				}
			}
			j.done <- errs[i]
			return
		}
	}
	err = tx.Commit()
	for i, j := range jobs {
		if errs[i] != nil {
			j.done <- errs[i]
		} else {
			j.done <- err
		}
	}
}

// errBatchLost marks a job whose failure took the batch's transaction
// with it.
var errBatchLost = errors.New("group commit: transaction lost")

// runJob runs fn between a savepoint and its release, rolling back to the
// savepoint when fn fails.
func runJob(ctx context.Context, hot hotTx, fn func(context.Context, *sql.Tx) error) error {
	if _, err := hot.ExecContext(ctx, savepointSQL); err != nil {
		return errors.Join(errBatchLost, err)
	}
	if err := fn(ctx, hot.tx); err != nil {
		if _, rerr := hot.ExecContext(ctx, rollbackToSQL); rerr != nil {
			return errors.Join(errBatchLost, err, rerr)
		}
		if _, rerr := hot.ExecContext(ctx, releaseSQL); rerr != nil {
			return errors.Join(errBatchLost, err, rerr)
		}
		return err
	}
	if _, err := hot.ExecContext(ctx, releaseSQL); err != nil {
		return errors.Join(errBatchLost, err)
	}
	return nil
}

func failAll(jobs []*groupJob, err error) {
	for _, j := range jobs {
		j.done <- err
	}
}
