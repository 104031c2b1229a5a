package server

import (
	"context"
	"time"
)

// Background work of a serving process. Every replica runs it: key reloads
// must happen everywhere, and the purge and the scheduled rotation are
// safe to run concurrently (bounded deletes; a conditional rotation).
const (
	keyReloadEvery = 30 * time.Second
	purgeEvery     = 10 * time.Minute
	purgeBatch     = 500
	// purgePause lets logins in between two batches: on SQLite every
	// batch holds the one write lock.
	purgePause = 50 * time.Millisecond
)

func (s *Server) runBackground(ctx context.Context) {
	go s.keys.Run(ctx, keyReloadEvery, s.cfg.KeyRotation)
	go func() {
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
	}()
}

// purge deletes expired refresh tokens in bounded batches, each its own
// short transaction, so that it never holds a lock a login waits on for
// long.
func (s *Server) purge(ctx context.Context) {
	total := 0
	for ctx.Err() == nil {
		n, err := s.store.PurgeExpiredRefreshTokens(ctx, time.Now(), purgeBatch)
		if err != nil {
			s.logger.ErrorContext(ctx, "purging expired refresh tokens failed", "error", err)
			return
		}
		total += n
		if n < purgeBatch {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(purgePause):
		}
	}
	if total > 0 {
		s.logger.InfoContext(ctx, "purged expired refresh tokens", "count", total)
	}
}
