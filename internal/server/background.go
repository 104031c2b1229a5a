package server

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/tokens"
)

// Background work of a serving process. Every replica runs it: key reloads
// must happen everywhere, and the purge and the scheduled rotation are
// safe to run concurrently (bounded deletes; a conditional rotation).
const (
	// keyReloadEvery bounds how long a replica can miss another's key
	// change when the notification that reloads at once was lost; the
	// tokens package keeps replaced keys published that much longer.
	keyReloadEvery = tokens.ReloadEvery
	purgeEvery     = 10 * time.Minute
	purgeBatch     = 500
	// purgePause lets logins in between two batches: on SQLite every
	// batch holds the one write lock.
	purgePause = 50 * time.Millisecond
)

// runBackground starts the background work until ctx is done; wait
// returns once all of it has stopped, so that none of it still runs, or
// logs, when the store is closed.
func (s *Server) runBackground(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { s.keys.Run(ctx, keyReloadEvery, s.cfg.KeyRotation) })
	wg.Go(func() {
		t := time.NewTicker(purgeEvery)
		defer t.Stop()
		for {
			s.purge(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return wg.Wait
}

// purge finishes the deletions of users, clients and connections that a
// crash cut short, then deletes expired refresh tokens, then expired attack-protection
// blocks and refilled IP buckets, then the jti of expired client
// assertions, then the users of deleted connections, then log events past
// GATEHOUSE_LOG_RETENTION, in bounded batches, each its own short
// transaction, so that it never holds a lock a login waits on for long.
func (s *Server) purge(ctx context.Context) {
	s.purgeBatches(ctx, "refresh tokens of deleted users, clients and connections", func(ctx context.Context) (int, bool, error) {
		return s.writes.PurgeDeletedOwnerTokens(ctx, purgeBatch)
	})
	s.purgeBatches(ctx, "expired refresh tokens", func(ctx context.Context) (int, bool, error) {
		n, err := s.store.PurgeExpiredRefreshTokens(ctx, time.Now(), purgeBatch)
		return n, n == purgeBatch, err
	})
	s.purgeBatches(ctx, "expired attack-protection blocks and buckets", func(ctx context.Context) (int, bool, error) {
		n, err := s.guard.Prune(ctx, purgeBatch)
		return n, n > 0, err
	})
	// An assertion is accepted until a little after its exp (clock skew),
	// so its jti is kept a minute past it.
	s.purgeBatches(ctx, "used client assertions", func(ctx context.Context) (int, bool, error) {
		n, err := s.store.PurgeClientAssertions(ctx, time.Now().Add(-time.Minute), purgeBatch)
		return n, n == purgeBatch, err
	})
	s.purgeBatches(ctx, "users of deleted connections", func(ctx context.Context) (int, bool, error) {
		return s.store.PurgeDeletedConnectionUsers(ctx, purgeBatch)
	})
	if s.cfg.LogRetention <= 0 {
		return
	}
	// One cut-off for the whole run: events logged while it runs are not
	// chased.
	before := time.Now().Add(-s.cfg.LogRetention)
	s.purgeBatches(ctx, "log events past their retention", func(ctx context.Context) (int, bool, error) {
		n, err := s.store.PurgeLogEvents(ctx, before, purgeBatch)
		return n, n == purgeBatch, err
	})
}

// purgeBatches runs batch until it reports nothing more to do, pausing
// between batches so that logins get the write lock in between.
func (s *Server) purgeBatches(ctx context.Context, what string, batch func(context.Context) (n int, more bool, err error)) {
	total := 0
	for ctx.Err() == nil {
		n, more, err := batch(ctx)
		if err != nil {
			// A batch cut short by shutdown is no failure: the next start
			// purges what is left.
			if ctx.Err() == nil {
				s.logger.ErrorContext(ctx, "purging "+what+" failed", "error", err)
			}
			return
		}
		total += n
		if !more {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(purgePause):
		}
	}
	if total > 0 {
		s.logger.InfoContext(ctx, "purged "+what, "count", total)
	}
}
