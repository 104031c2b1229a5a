package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// On SQLite every write goes through the one writer, so a deletion that
// took an owner's refresh tokens in one transaction held every login's
// writes for as long as it ran: seconds for a user, a client or a
// connection with a hundred thousand tokens. There the deletion records
// the owner in refresh_purges first, which refuses its tokens at once
// (notPurged), deletes the tokens in transactions of at most purgeChunk
// rows, and then deletes the owner as before, with its row in
// refresh_purges, in one transaction that finds few tokens left, if any:
// those issued while it ran. A deletion cut short by a crash is finished
// by PurgeDeletedOwnerTokens. PostgreSQL's writers do not queue behind one
// another, so it keeps deleting an owner in one transaction.

// purgeChunk bounds the refresh tokens one transaction of a deletion
// deletes on SQLite: some milliseconds of the writer (tens on a loaded
// machine).
const purgeChunk = 200

// notPurged is the condition of a token of the refresh_tokens row t that
// no deletion of its user, client or connection under way (refresh_purges)
// has refused: issued after the deletion began (to an owner made again
// under the name), or of another owner. A token stored before tokens
// recorded their connection (migration 8) belongs to the connection of
// its user's latest login, as for the deletion. The table is empty but
// while a deletion runs, so the check costs one probe.
func notPurged(t string) string {
	return `NOT EXISTS (SELECT 1 FROM refresh_purges p WHERE ` + t + `.seq <= p.last_token AND (
		(p.kind = 'user' AND p.name = ` + t + `.user_id) OR (p.kind = 'client' AND p.name = ` + t + `.client_id)
		OR (p.kind = 'connection' AND (p.name = ` + t + `.connection OR (` + t + `.connection = '' AND EXISTS (
			SELECT 1 FROM users pu WHERE pu.user_id = ` + t + `.user_id AND pu.connection = p.name))))))`
}

// ownerPurge is a row of refresh_purges.
type ownerPurge struct {
	seq            int64
	kind, id, name string
}

// Kinds of owner.
const (
	purgeUser       = "user"
	purgeClient     = "client"
	purgeConnection = "connection"
)

// purgeOwnerNameSQL reads, by an owner's id ($1), what its tokens carry.
var purgeOwnerNameSQL = map[string]string{
	purgeUser:       "SELECT user_id FROM users WHERE user_id = $1",
	purgeClient:     "SELECT client_id FROM clients WHERE client_id = $1",
	purgeConnection: "SELECT name FROM connections WHERE id = $1",
}

// deleteInChunks deletes the owner kind id on SQLite: its row in
// refresh_purges, its tokens in chunks, then the owner (finishOwner). It
// fails with sql.ErrNoRows when there is no such owner. Once the owner is
// recorded the deletion goes on if ctx is cancelled: a caller that went
// away must not leave the rest to the next background purge.
func (s *Store) deleteInChunks(ctx context.Context, kind, id string) error {
	p, err := s.beginOwnerPurge(ctx, kind, id)
	if err != nil {
		return err
	}
	return s.runOwnerPurge(context.WithoutCancel(ctx), p)
}

// runOwnerPurge deletes p's tokens in chunks, then its owner. It stops
// once p's row is gone: another deletion of the owner, or the background
// purge, finished it, and whatever carries the name now (an owner made
// again, its tokens) is not this deletion's to take.
func (s *Store) runOwnerPurge(ctx context.Context, p ownerPurge) error {
	for {
		start := time.Now()
		n, err := s.purgeOwnerTokens(ctx, p, purgeChunk)
		if err != nil {
			return err
		}
		if n < purgeChunk {
			_, err := s.finishOwner(ctx, p)
			return err
		}
		// The writers that queued behind the chunk go first: handed the
		// writer in no order, one could wait through several chunks.
		time.Sleep(time.Since(start))
	}
}

// beginOwnerPurge records the deletion of the owner kind id in
// refresh_purges, in one short transaction, or fails with sql.ErrNoRows.
func (s *Store) beginOwnerPurge(ctx context.Context, kind, id string) (ownerPurge, error) {
	p := ownerPurge{kind: kind, id: id}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, purgeOwnerNameSQL[kind], id).Scan(&p.name); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO refresh_purges (kind, id, name, last_token)
			VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) FROM refresh_tokens)) RETURNING seq`,
			kind, id, p.name).Scan(&p.seq)
	})
	return p, err
}

// purgeOwnerTokens deletes at most limit tokens of p's owner in one
// statement, none once p's row is gone (runOwnerPurge).
func (s *Store) purgeOwnerTokens(ctx context.Context, p ownerPurge, limit int) (int, error) {
	tokens := "SELECT seq FROM refresh_tokens WHERE user_id = $1"
	switch p.kind {
	case purgeClient:
		tokens = "SELECT seq FROM refresh_tokens WHERE client_id = $1"
	case purgeConnection:
		tokens = s.connectionRefreshSeqs()
	}
	res, err := s.write.ExecContext(ctx, "DELETE FROM refresh_tokens WHERE seq IN ("+tokens+" LIMIT $2) "+
		"AND EXISTS (SELECT 1 FROM refresh_purges WHERE seq = $3)", p.name, limit, p.seq)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// endOwnerPurgesSQL deletes the rows of every deletion of the owner kind
// $1 id $2 ($1 and $2 as in refresh_purges): once the owner is gone, a
// deletion of it that began at the same time, or that a crash cut short,
// has nothing left to do, and must not take an owner made again under
// the name.
const endOwnerPurgesSQL = "DELETE FROM refresh_purges WHERE kind = $1 AND id = $2"

// finishOwner deletes p's owner, as the deletion of one transaction does,
// with the rows of every deletion of it (endOwnerPurgesSQL), and reports
// whether it did: not once p's row is gone, when another deletion or the
// background purge finished the owner. An owner already gone otherwise
// was deleted by a path that keeps no row here (the purge of a deleted
// connection's users).
func (s *Store) finishOwner(ctx context.Context, p ownerPurge) (bool, error) {
	done := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM refresh_purges WHERE seq = $1", p.seq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		switch p.kind {
		case purgeUser:
			_, err = tx.ExecContext(ctx, "DELETE FROM users WHERE user_id = $1", p.id)
		case purgeClient:
			_, err = tx.ExecContext(ctx, "DELETE FROM clients WHERE client_id = $1", p.id)
		case purgeConnection:
			if _, err = s.deleteConnectionTx(ctx, tx, p.id); errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, endOwnerPurgesSQL, p.kind, p.id); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done && err == nil, err
}

// PurgeDeletedOwnerTokens finishes, on SQLite, the deletions of users,
// clients and connections that a crash cut short: it deletes at most
// limit of their refresh tokens, and each owner that has none left. A
// deletion under way is finished by whichever of it and the purge comes
// first. n counts the tokens and the owners deleted.
func (s *Store) PurgeDeletedOwnerTokens(ctx context.Context, limit int) (n int, more bool, err error) {
	var todo []ownerPurge
	err = func() error {
		rows, err := s.read.QueryContext(ctx, "SELECT seq, kind, id, name FROM refresh_purges ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p ownerPurge
			if err := rows.Scan(&p.seq, &p.kind, &p.id, &p.name); err != nil {
				return err
			}
			todo = append(todo, p)
		}
		return rows.Err()
	}()
	if err != nil {
		return 0, false, s.fail("purge deleted owner tokens", err)
	}
	for _, p := range todo {
		for {
			want := min(purgeChunk, limit-n)
			got, err := s.purgeOwnerTokens(ctx, p, want)
			if n += got; err != nil {
				return n, false, s.fail("purge deleted owner tokens", err)
			}
			if n == limit {
				return n, true, nil
			}
			if got < want {
				break
			}
		}
		done, err := s.finishOwner(ctx, p)
		if err != nil {
			return n, false, s.fail("purge deleted owner tokens", err)
		}
		if !done {
			continue
		}
		if n++; n >= limit {
			return n, true, nil
		}
	}
	return n, false, nil
}
