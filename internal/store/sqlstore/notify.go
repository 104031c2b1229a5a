package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// configChannelSQL names the PostgreSQL channel of changes other processes
// must hear about, for the schema the connection uses: replicas share a
// schema, other schemas in the same database (tests use one each) must not
// hear them, and a channel name is limited to 63 bytes, so the schema name
// is hashed. The payload says what changed.
const configChannelSQL = "'gatehouse_config_' || md5(current_schema())"

// Payloads of the notifications on configChannelSQL.
const (
	payloadConfig = ""
	payloadKeys   = "keys"
)

// notifyKeysSQL tells the other processes that the signing keys changed.
// Sent within the transaction that changed them, it is delivered if and
// only if that transaction commits.
const notifyKeysSQL = "SELECT pg_notify(" + configChannelSQL + ", '" + payloadKeys + "')"

const (
	// listenBackoffMin and listenBackoffMax bound the wait between two
	// attempts to get the listening connection back.
	listenBackoffMin = 250 * time.Millisecond
	listenBackoffMax = 30 * time.Second
	// listenIdle is how long the listener waits for a notification before
	// pinging: a connection that died without a reset (a dropped route, a
	// silently restarted proxy) would otherwise never report an error.
	listenIdle  = 30 * time.Second
	pingTimeout = 5 * time.Second
)

// ConfigChanged tells the other processes sharing the database that
// clients, connections, APIs, client grants or settings were written, so
// that they drop what they cached (Changes.Config). It does nothing on
// SQLite, which one process serves.
//
// A failure is logged, not returned: it follows a committed write, which a
// caller must not retry, and the others' cache TTL still bounds how long
// they miss it.
func (s *Store) ConfigChanged(ctx context.Context) {
	if s.listenCfg == nil {
		return
	}
	if _, err := s.write.ExecContext(ctx, "SELECT pg_notify("+configChannelSQL+", '"+payloadConfig+"')"); err != nil {
		s.logger.WarnContext(ctx, "telling other replicas about a configuration change failed: they see it when their cache expires", "error", err)
	}
}

// keysChanged tells the other processes, within tx, that the signing keys
// changed (Changes.Keys); nothing to tell on SQLite.
func (s *Store) keysChanged(ctx context.Context, tx *sql.Tx) error {
	if s.listenCfg == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, notifyKeysSQL)
	return err
}

// Changes are what Listen calls on a change reported by another process
// (or this one); a nil one is not called.
type Changes struct {
	// Config: clients, connections, APIs, client grants or settings were
	// written (ConfigChanged).
	Config func()
	// Keys: the signing keys were written (every KeyStore write does).
	Keys func()
}

// notify calls the callback of the payload's kind; an unknown payload,
// from a newer version, calls every callback.
func (c Changes) notify(payload string) {
	switch payload {
	case payloadConfig:
		c.call(true, false)
	case payloadKeys:
		c.call(false, true)
	default:
		c.call(true, true)
	}
}

func (c Changes) call(config, keys bool) {
	if config && c.Config != nil {
		c.Config()
	}
	if keys && c.Keys != nil {
		c.Keys()
	}
}

// Listen calls the callbacks of c for every change another process (or
// this one) reports, until ctx is done. It holds one connection of its
// own, outside the pool. When that connection fails it calls every
// callback — a change may have been missed — and reconnects with backoff,
// calling them again once it listens, for what was written in between. On
// SQLite it returns at once.
func (s *Store) Listen(ctx context.Context, c Changes) {
	if s.listenCfg == nil {
		return
	}
	backoff := listenBackoffMin
	var lost error
	for {
		listened, err := s.listen(ctx, c, lost)
		if ctx.Err() != nil {
			return
		}
		c.call(true, true)
		if listened {
			backoff = listenBackoffMin
		}
		s.logger.WarnContext(ctx, "change listener lost its database connection: reconnecting", "error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoffMax)
		lost = err
	}
}

// listen connects, LISTENs and calls every callback once listening and
// then those of every notification, until the connection fails or ctx is
// done. It reports whether it got as far as listening. lost is the error
// that ended the previous attempt, if any.
func (s *Store) listen(ctx context.Context, c Changes, lost error) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return false, fmt.Errorf("sqlstore: listen: %w", err)
	}
	defer conn.Close(ctx)
	var channel string
	if err := conn.QueryRow(ctx, "SELECT "+configChannelSQL).Scan(&channel); err != nil {
		return false, fmt.Errorf("sqlstore: listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("sqlstore: listen: %w", err)
	}
	if lost != nil {
		s.logger.InfoContext(ctx, "change listener reconnected")
	}
	c.call(true, true)
	for {
		n, err := s.waitForNotification(ctx, conn)
		if err != nil {
			return true, fmt.Errorf("sqlstore: listen: %w", err)
		}
		c.notify(n.Payload)
	}
}

// waitForNotification returns the next notification, pinging the
// connection whenever it has been quiet for listenIdle.
func (s *Store) waitForNotification(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil || ctx.Err() != nil || !pgconn.Timeout(err) {
			return n, err
		}
		// A timeout leaves the connection usable (pgconn closes it on any
		// other error); check that the server is still there.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
}
