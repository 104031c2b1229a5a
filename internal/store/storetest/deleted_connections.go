package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// purgeConnectionUsers runs PurgeDeletedConnectionUsers with batch until it
// reports no more, checking that no batch exceeds batch, and returns how
// many users it deleted.
func purgeConnectionUsers(t *testing.T, s store.Store, batch int) int {
	t.Helper()
	total := 0
	for {
		n, more, err := s.PurgeDeletedConnectionUsers(t.Context(), batch)
		must(t, err)
		if n > batch {
			t.Fatalf("one batch deleted %d users, want at most %d", n, batch)
		}
		total += n
		if !more {
			return total
		}
	}
}

// testDeletedConnectionUsers: the users whose latest login went through a
// deleted connection go with their refresh tokens, in bounded batches;
// those of another connection stay, and so does one who signed in through
// a connection made again under the name after the deletion. A user of
// the deleted connection stored after the deletion, even after a purge
// that found none left, goes too (sqlstore's TestDeletedConnectionForgotten:
// the deletion is forgotten once no login under way can store one).
func testDeletedConnectionUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "contoso", "c1")))
	must(t, s.CreateConnection(ctx, fullConnection("con_o", "other", "c1")))
	before := time.Now().Add(-time.Hour)
	user := func(id, connection string, lastLogin *time.Time) {
		t.Helper()
		u := fullUser(id)
		u.Connection, u.LastLogin = connection, lastLogin
		_, err := s.UpsertUser(ctx, u)
		must(t, err)
	}
	token := func(id, user, connection string) {
		t.Helper()
		rt := tok(id, "", time.Now())
		rt.UserID, rt.Connection = user, connection
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	gone := []string{"u1", "gone-never-signed-in"}
	user("u1", "contoso", &before) // refreshFixture's user
	user("gone-never-signed-in", "contoso", nil)
	for i := range 5 {
		id := fmt.Sprintf("gone-%d", i)
		user(id, "contoso", &before)
		gone = append(gone, id)
	}
	user("kept-other", "other", &before)
	user("kept-signed-in-again", "contoso", &before)
	// Issued through the other connection, whose deletion does not
	// delete it, to a user whose latest login went through contoso.
	token("gone-via-other", "gone-0", "other")
	token("kept-other", "kept-other", "other")

	must(t, s.DeleteConnection(ctx, "con_1"))
	must(t, s.CreateConnection(ctx, fullConnection("con_2", "contoso", "c1")))
	// deleted_at and last_login are milliseconds of the same clock here.
	time.Sleep(2 * time.Millisecond)
	user("kept-signed-in-again", "contoso", ptr(time.Now()))
	token("kept-signed-in-again", "kept-signed-in-again", "contoso")

	if n := purgeConnectionUsers(t, s, 2); n != len(gone) {
		t.Errorf("purged %d users, want %d", n, len(gone))
	}
	for _, id := range gone {
		_, err := s.GetUser(ctx, id)
		wantErr(t, "user "+id+" of the deleted connection", err, store.ErrNotFound)
	}
	for _, id := range []string{"kept-other", "kept-signed-in-again"} {
		_, err := s.GetUser(ctx, id)
		must(t, err)
		_, err = s.GetRefreshToken(ctx, id)
		must(t, err)
	}
	_, err := s.GetRefreshToken(ctx, "gone-via-other")
	wantErr(t, "token of a purged user", err, store.ErrNotFound)

	// A login under way when its connection was deleted stores its user
	// after the deletion: the user goes while no connection has the name.
	must(t, s.CreateConnection(ctx, fullConnection("con_f", "fabrikam", "c1")))
	must(t, s.DeleteConnection(ctx, "con_f"))
	time.Sleep(2 * time.Millisecond)
	user("signed-in-late", "fabrikam", ptr(time.Now()))
	if n := purgeConnectionUsers(t, s, 2); n != 1 {
		t.Errorf("purge after a late login deleted %d users, want 1", n)
	}
	_, err = s.GetUser(ctx, "signed-in-late")
	wantErr(t, "user who signed in through the deleted connection late", err, store.ErrNotFound)

	// So does one stored after a purge that found none left: the deletion
	// is remembered past any login under way when it happened.
	must(t, s.CreateConnection(ctx, fullConnection("con_n", "northwind", "c1")))
	must(t, s.DeleteConnection(ctx, "con_n"))
	if n := purgeConnectionUsers(t, s, 2); n != 0 {
		t.Errorf("purge of a connection without users deleted %d users, want 0", n)
	}
	time.Sleep(2 * time.Millisecond)
	user("signed-in-after-purge", "northwind", ptr(time.Now()))
	if n := purgeConnectionUsers(t, s, 2); n != 1 {
		t.Errorf("purge after a login that completed after the previous purge deleted %d users, want 1", n)
	}
	_, err = s.GetUser(ctx, "signed-in-after-purge")
	wantErr(t, "user who signed in through the deleted connection after a purge", err, store.ErrNotFound)

	// A user who signed in since through the connection made again under
	// the name stays.
	user("later", "contoso", ptr(time.Now()))
	if n := purgeConnectionUsers(t, s, 2); n != 0 {
		t.Errorf("a second purge deleted %d users, want 0", n)
	}
	_, err = s.GetUser(ctx, "later")
	must(t, err)

	// A later deletion of the name takes those it left.
	time.Sleep(2 * time.Millisecond)
	must(t, s.DeleteConnection(ctx, "con_2"))
	if n := purgeConnectionUsers(t, s, 500); n != 2 {
		t.Errorf("purge after the second deletion deleted %d users, want 2", n)
	}
	for _, id := range []string{"later", "kept-signed-in-again"} {
		_, err := s.GetUser(ctx, id)
		wantErr(t, "user "+id+" after the second deletion", err, store.ErrNotFound)
	}
}

// testDeletedConnectionUsersTogether: replicas purge at the same time
// while the users' tokens are revoked and exchanged; every user of the
// deleted connection goes, each once, and none of them fails.
func testDeletedConnectionUsersTogether(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, fullClient("c1")))
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "contoso", "c1")))
	const users = 120
	before := time.Now().Add(-time.Hour)
	now := time.Now()
	token := func(id, family, user string) *store.RefreshToken {
		return &store.RefreshToken{ID: id, FamilyID: family, SecretHash: []byte(id), ClientID: "c1", UserID: user,
			Rotating: true, CreatedAt: now, ExpiresAt: ptr(now.Add(time.Hour)), Connection: "other"}
	}
	for i := range users {
		u := fullUser(fmt.Sprintf("u%03d", i))
		u.LastLogin = &before
		_, err := s.UpsertUser(ctx, u)
		must(t, err)
		for j := range 3 {
			must(t, s.CreateRefreshToken(ctx, token(fmt.Sprintf("t%03d-%d", i, j), "", u.UserID)))
		}
	}
	must(t, s.DeleteConnection(ctx, "con_1"))

	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make(chan error, users*2)
	for r := range counts {
		wg.Go(func() {
			for {
				n, more, err := s.PurgeDeletedConnectionUsers(ctx, 7)
				if err != nil {
					errs <- fmt.Errorf("purge: %w", err)
					return
				}
				counts[r] += n
				if !more {
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range users {
			if _, err := s.RevokeUserRefreshTokens(ctx, fmt.Sprintf("u%03d", users-1-i)); err != nil {
				errs <- fmt.Errorf("revoke: %w", err)
			}
		}
	})
	wg.Go(func() {
		for i := range users {
			id := fmt.Sprintf("t%03d-1", i)
			err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: now, Next: token(id+"-next", id, fmt.Sprintf("u%03d", i))})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				errs <- fmt.Errorf("exchange: %w", err)
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A purge may skip a user another writer held: the next run takes it.
	rest := purgeConnectionUsers(t, s, 500)
	if got := counts[0] + counts[1] + rest; got != users {
		t.Errorf("purges deleted %d + %d + %d users, want %d in all", counts[0], counts[1], rest, users)
	}
	_, total, err := s.ListUsers(ctx, store.UserFilter{}, store.ListOptions{})
	must(t, err)
	if total != 0 {
		t.Errorf("%d users left", total)
	}
	for i := range users {
		for _, id := range []string{"t%03d-0", "t%03d-1", "t%03d-2", "t%03d-1-next"} {
			id = fmt.Sprintf(id, i)
			if _, err := s.GetRefreshToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("token %s left: %v", id, err)
			}
		}
	}
}
