package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// configChannelSQL names the PostgreSQL channel of configuration changes
// for the schema the connection uses: replicas share a schema, other
// schemas in the same database (tests use one each) must not hear them, and
// a channel name is limited to 63 bytes, so the schema name is hashed.
const configChannelSQL = "'gatehouse_config_' || md5(current_schema())"

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
// that they drop what they cached (ListenConfigChanges). It does nothing on
// SQLite, which one process serves.
//
// A failure is logged, not returned: it follows a committed write, which a
// caller must not retry, and the others' cache TTL still bounds how long
// they miss it.
func (s *Store) ConfigChanged(ctx context.Context) {
	if s.listenCfg == nil {
		return
	}
	if _, err := s.write.ExecContext(ctx, "SELECT pg_notify("+configChannelSQL+", '')"); err != nil {
		s.logger.WarnContext(ctx, "telling other replicas about a configuration change failed: they see it when their cache expires", "error", err)
	}
}

// ListenConfigChanges calls onChange whenever another process (or this
// one) reports a configuration change through ConfigChanged, until ctx is
// done. It holds one connection of its own, outside the pool. When that
// connection fails it calls onChange — a change may have been missed — and
// reconnects with backoff, calling onChange again once it listens, for what
// was written in between. On SQLite it returns at once.
func (s *Store) ListenConfigChanges(ctx context.Context, onChange func()) {
	if s.listenCfg == nil {
		return
	}
	backoff := listenBackoffMin
	var lost error
	for {
		listened, err := s.listen(ctx, onChange, lost)
		if ctx.Err() != nil {
			return
		}
		onChange()
		if listened {
			backoff = listenBackoffMin
		}
		s.logger.WarnContext(ctx, "configuration change listener lost its database connection: reconnecting", "error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoffMax)
		lost = err
	}
}

// listen connects, LISTENs and calls onChange once listening and then for
// every notification, until the connection fails or ctx is done. It
// reports whether it got as far as listening. lost is the error that ended
// the previous attempt, if any.
func (s *Store) listen(ctx context.Context, onChange func(), lost error) (bool, error) {
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
		s.logger.InfoContext(ctx, "configuration change listener reconnected")
	}
	onChange()
	for {
		if err := s.waitForNotification(ctx, conn); err != nil {
			return true, fmt.Errorf("sqlstore: listen: %w", err)
		}
		onChange()
	}
}

// waitForNotification returns nil once a notification arrives, pinging the
// connection whenever it has been quiet for listenIdle.
func (s *Store) waitForNotification(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil || ctx.Err() != nil || !pgconn.Timeout(err) {
			return err
		}
		// A timeout leaves the connection usable (pgconn closes it on any
		// other error); check that the server is still there.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}
