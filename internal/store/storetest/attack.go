package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func testAttackAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0
	bf := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: "alice@example.com", IP: "192.0.2.1"}
	take := func(c store.AttackCounter, at time.Time, want bool) {
		t.Helper()
		ok, err := s.TakeAttempt(ctx, c, 3, at, at.Add(-time.Hour))
		must(t, err)
		if ok != want {
			t.Fatalf("TakeAttempt(%+v) at %v = %v, want %v", c, at, ok, want)
		}
	}
	for range 3 {
		take(bf, now, true)
	}
	take(bf, now, false)
	// Another IP, kind or connection is another counter.
	other := bf
	other.IP = "192.0.2.2"
	take(other, now, true)
	budget := bf
	budget.Kind, budget.IP = store.AttackUpstreamBudget, ""
	take(budget, now, true)

	// A returned attempt frees one place.
	must(t, s.ReturnAttempt(ctx, bf))
	take(bf, now, true)
	take(bf, now, false)

	// An idle counter starts over.
	take(bf, now.Add(2*time.Hour), true)

	got, err := s.ListAttackCounters(ctx, "alice@example.com", now.Add(-time.Minute))
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("ListAttackCounters: %d counters, want 3: %+v", len(got), got)
	}
	for _, c := range got {
		if c.Kind == store.AttackBruteForce && c.IP == "192.0.2.1" && (c.Attempts != 1 || !c.UpdatedAt.Equal(ms(now.Add(2*time.Hour)))) {
			t.Errorf("restarted counter = %+v, want 1 attempt at %v", c, ms(now.Add(2*time.Hour)))
		}
	}
	if got, _ := s.ListAttackCounters(ctx, "alice@example.com", now.Add(3*time.Hour)); len(got) != 0 {
		t.Errorf("ListAttackCounters since later: %+v, want none", got)
	}

	// A connection's delete leaves the other connections' counters.
	c2 := bf
	c2.Connection = "c2"
	take(c2, now, true)
	n, err := s.DeleteAttackCounters(ctx, "c2", "alice@example.com")
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteAttackCounters(c2) = %d, want 1", n)
	}

	n, err = s.DeleteAttackCounters(ctx, "", "alice@example.com", store.AttackUpstreamBudget)
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteAttackCounters(budget) = %d, want 1", n)
	}
	n, err = s.DeleteAttackCounters(ctx, "", "alice@example.com")
	must(t, err)
	if n != 2 {
		t.Errorf("DeleteAttackCounters(all) = %d, want 2", n)
	}
	take(bf, now, true)
}

// testAttackAttemptRace is the guarantee the token endpoint relies on:
// parallel attempts never get more places than the limit.
func testAttackAttemptRace(t *testing.T, s store.Store) {
	const limit, parallel = 10, 50
	c := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: "bob@example.com", IP: "198.51.100.7"}
	var (
		wg      sync.WaitGroup
		allowed atomic.Int32
		start   = make(chan struct{})
	)
	for range parallel {
		wg.Go(func() {
			<-start
			ok, err := s.TakeAttempt(t.Context(), c, limit, time.Now(), time.Now().Add(-time.Hour))
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := allowed.Load(); got != limit {
		t.Fatalf("%d of %d parallel attempts allowed, want %d", got, parallel, limit)
	}
}

func testAttackTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	const interval = time.Minute
	now := t0
	for i := range 3 {
		ok, left, _, err := s.TakeToken(ctx, "ip:192.0.2.1", 3, interval, now)
		must(t, err)
		if !ok || left != 2-i {
			t.Fatalf("take %d: ok=%v left=%d, want true %d", i, ok, left, 2-i)
		}
	}
	ok, left, next, err := s.TakeToken(ctx, "ip:192.0.2.1", 3, interval, now)
	must(t, err)
	if ok || left != 0 || !next.Equal(ms(now.Add(interval))) {
		t.Fatalf("empty bucket: ok=%v left=%d next=%v, want false 0 %v", ok, left, next, ms(now.Add(interval)))
	}
	// One token comes back per interval.
	if ok, _, _, _ := s.TakeToken(ctx, "ip:192.0.2.1", 3, interval, now.Add(interval)); !ok {
		t.Fatal("no token after one interval")
	}
	if ok, _, _, _ := s.TakeToken(ctx, "ip:192.0.2.1", 3, interval, now.Add(interval)); ok {
		t.Fatal("two tokens after one interval")
	}
	must(t, s.ReturnToken(ctx, "ip:192.0.2.1", interval))
	if ok, _, _, _ := s.TakeToken(ctx, "ip:192.0.2.1", 3, interval, now.Add(interval)); !ok {
		t.Fatal("returned token not available")
	}
	// Other buckets are untouched; a long idle bucket is full again.
	if ok, left, _, _ := s.TakeToken(ctx, "ip:192.0.2.2", 3, interval, now); !ok || left != 2 {
		t.Fatalf("other bucket: ok=%v left=%d", ok, left)
	}
	if ok, left, _, _ := s.TakeToken(ctx, "ip:192.0.2.1", 3, interval, now.Add(time.Hour)); !ok || left != 2 {
		t.Fatalf("refilled bucket: ok=%v left=%d, want true 2", ok, left)
	}
}

func testAttackTokenRace(t *testing.T, s store.Store) {
	const burst, parallel = 7, 40
	var (
		wg      sync.WaitGroup
		allowed atomic.Int32
		now     = time.Now()
	)
	for range parallel {
		wg.Go(func() {
			ok, _, _, err := s.TakeToken(t.Context(), "ip:race", burst, time.Hour, now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != burst {
		t.Fatalf("%d parallel takes allowed, want %d", got, burst)
	}
}

func testAttackSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.GetAttackSettings(ctx, "brute-force-protection")
	must(t, err)
	if got != nil {
		t.Fatalf("settings before Put = %s, want nil", got)
	}
	// Each write is over the document read: none at first.
	var read json.RawMessage
	for _, doc := range []string{`{"enabled":true}`, `{"enabled":false,"max_attempts":3}`} {
		must(t, s.PutAttackSettings(ctx, "brute-force-protection", read, json.RawMessage(doc)))
		got, err := s.GetAttackSettings(ctx, "brute-force-protection")
		must(t, err)
		if string(got) != doc {
			t.Fatalf("settings = %s, want %s", got, doc)
		}
		read = got
	}
	// Writes over a document read before the last write would undo it:
	// the first write's read (none stored) and the second's.
	for _, stale := range []json.RawMessage{nil, json.RawMessage(`{"enabled":true}`)} {
		wantErr(t, fmt.Sprintf("PutAttackSettings over %s, written since", stale),
			s.PutAttackSettings(ctx, "brute-force-protection", stale, json.RawMessage(`{"enabled":true,"max_attempts":1}`)), store.ErrConflict)
	}
	got, err = s.GetAttackSettings(ctx, "brute-force-protection")
	must(t, err)
	if string(got) != string(read) {
		t.Fatalf("settings after refused writes = %s, want %s", got, read)
	}
	if err := s.PutAttackSettings(ctx, "x", nil, json.RawMessage("{")); err == nil {
		t.Fatal("PutAttackSettings accepted invalid JSON")
	}
}

func testAttackBucketDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if tat, err := s.AttackBucket(ctx, "b"); err != nil || !tat.IsZero() {
		t.Fatalf("AttackBucket of no bucket: %v %v", tat, err)
	}
	for range 2 {
		if _, _, _, err := s.TakeToken(ctx, "b", 2, time.Minute, t0); err != nil {
			t.Fatal(err)
		}
	}
	if tat, err := s.AttackBucket(ctx, "b"); err != nil || !tat.Equal(t0.Add(2*time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("AttackBucket after two takes: %v %v, want %v", tat, err, t0.Add(2*time.Minute))
	}
	if ok, _, _, _ := s.TakeToken(ctx, "b", 2, time.Minute, t0); ok {
		t.Fatal("a third token from a bucket of two")
	}
	if ok, err := s.DeleteAttackBucket(ctx, "b"); err != nil || !ok {
		t.Fatalf("DeleteAttackBucket: %v %v", ok, err)
	}
	if ok, err := s.DeleteAttackBucket(ctx, "b"); err != nil || ok {
		t.Fatalf("DeleteAttackBucket again: %v %v", ok, err)
	}
	if ok, left, _, err := s.TakeToken(ctx, "b", 2, time.Minute, t0); err != nil || !ok || left != 1 {
		t.Fatalf("take from the refilled bucket: %v %d %v", ok, left, err)
	}
}

func testAttackPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c", Identifier: "old", IP: "192.0.2.1"}
	old2 := old
	old2.IP = "192.0.2.2"
	recent := old
	recent.Identifier = "recent"
	for c, at := range map[store.AttackCounter]time.Time{old: t0, old2: t0, recent: t0.Add(time.Hour)} {
		if _, err := s.TakeAttempt(ctx, c, 5, at, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// One bucket refilled by t0+2h, one still draining.
	if _, _, _, err := s.TakeToken(ctx, "full", 3, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.TakeToken(ctx, "draining", 3, 4*time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	// A batch of one removes one old counter and the full bucket, the next
	// the other old counter, the last finds nothing more.
	for round, want := range []int{2, 1, 0} {
		n, err := s.PruneAttack(ctx, t0.Add(30*time.Minute), t0.Add(2*time.Hour), 1)
		must(t, err)
		if n != want {
			t.Fatalf("PruneAttack round %d removed %d rows, want %d", round, n, want)
		}
	}
	if got, _ := s.ListAttackCounters(ctx, "old", time.Time{}); len(got) != 0 {
		t.Errorf("old counter kept: %+v", got)
	}
	if got, _ := s.ListAttackCounters(ctx, "recent", time.Time{}); len(got) != 1 {
		t.Errorf("recent counter pruned")
	}
	// The draining bucket still remembers its token: 2 left, not 3.
	if _, left, _, _ := s.TakeToken(ctx, "draining", 3, 4*time.Hour, t0.Add(2*time.Hour)); left != 1 {
		t.Errorf("draining bucket: %d left after a take, want 1", left)
	}
}

func testAttackLogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	const id, interval = "carol@example.com", time.Minute
	bf := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: id, IP: "192.0.2.9"}
	budget := store.AttackCounter{Kind: store.AttackUpstreamBudget, Connection: "c1", Identifier: id}
	take := func(blockBF bool) store.LoginTake {
		return store.LoginTake{Bucket: "ip:192.0.2.9", Burst: 3, Interval: interval, Now: t0, Counters: []store.CounterTake{
			{Counter: bf, Limit: 2, ExpireBefore: t0.Add(-time.Hour), Block: blockBF},
			{Counter: budget, Limit: 1, ExpireBefore: t0.Add(-time.Hour), Block: true},
		}}
	}
	attempts := func() map[string]int {
		t.Helper()
		cs, err := s.ListAttackCounters(ctx, id, time.Time{})
		must(t, err)
		m := map[string]int{}
		for _, c := range cs {
			m[c.Kind] = c.Attempts
		}
		return m
	}

	got, err := s.TakeLogin(ctx, take(true))
	must(t, err)
	if got.TokenRefused || got.Refused != -1 || got.Left != 2 || !got.Counted[0] || !got.Counted[1] {
		t.Fatalf("first take = %+v, want everything taken, 2 tokens left", got)
	}
	// The budget is full: the brute-force attempt comes back, the token
	// stays taken.
	got, err = s.TakeLogin(ctx, take(true))
	must(t, err)
	if got.TokenRefused || got.Refused != 1 || got.Counted[0] || got.Counted[1] || got.Left != 1 {
		t.Fatalf("take over budget = %+v, want refused by counter 1, nothing counted, 1 token left", got)
	}
	if m := attempts(); m[store.AttackBruteForce] != 1 || m[store.AttackUpstreamBudget] != 1 {
		t.Fatalf("counters after refusal = %v, want 1 and 1", m)
	}

	// ClearLogin removes the connection's counters at the login's IP and
	// across IPs, no other connection's nor another IP's, and gives one
	// token back.
	other := bf
	other.Connection = "c2"
	_, err = s.TakeAttempt(ctx, other, 2, t0, t0.Add(-time.Hour))
	must(t, err)
	elsewhere := bf
	elsewhere.IP = "192.0.2.99"
	_, err = s.TakeAttempt(ctx, elsewhere, 2, t0, t0.Add(-time.Hour))
	must(t, err)
	must(t, s.ClearLogin(ctx, store.LoginClear{Connection: "c1", Identifier: id, IP: "192.0.2.9", Bucket: "ip:192.0.2.9", Interval: interval}))
	cs, err := s.ListAttackCounters(ctx, id, time.Time{})
	must(t, err)
	var left []string
	for _, c := range cs {
		left = append(left, c.Connection+" "+c.IP)
	}
	if slices.Sort(left); !slices.Equal(left, []string{"c1 192.0.2.99", "c2 192.0.2.9"}) {
		t.Fatalf("counters after ClearLogin of c1 at 192.0.2.9 = %q; want c1's at 192.0.2.99 and c2's", left)
	}
	_, err = s.DeleteAttackCounters(ctx, "", id)
	must(t, err)
	if m := attempts(); len(m) != 0 {
		t.Fatalf("counters after ClearLogin = %v, want none", m)
	}
	got, err = s.TakeLogin(ctx, take(true))
	must(t, err)
	if got.Refused != -1 || got.Left != 1 {
		t.Fatalf("take after ClearLogin = %+v, want allowed with 1 token left", got)
	}

	// A full counter without Block is passed over, uncounted.
	must(t, s.ClearLogin(ctx, store.LoginClear{Connection: "c1", Identifier: id, IP: "192.0.2.9"}))
	for range 2 {
		_, err := s.TakeAttempt(ctx, bf, 2, t0, t0.Add(-time.Hour))
		must(t, err)
	}
	got, err = s.TakeLogin(ctx, take(false))
	must(t, err)
	if got.Refused != -1 || got.Counted[0] || !got.Counted[1] || got.Left != 0 {
		t.Fatalf("take past a non-blocking full counter = %+v, want budget counted only, 0 left", got)
	}

	// An empty bucket refuses before any counter is touched.
	must(t, s.ClearLogin(ctx, store.LoginClear{Connection: "c1", Identifier: id, IP: "192.0.2.9"}))
	got, err = s.TakeLogin(ctx, take(true))
	must(t, err)
	if !got.TokenRefused || got.Left != 0 || !got.Next.Equal(ms(t0.Add(interval))) || got.Counted[0] || got.Counted[1] {
		t.Fatalf("take from an empty bucket = %+v, want refused, next at %v", got, ms(t0.Add(interval)))
	}
	if m := attempts(); len(m) != 0 {
		t.Fatalf("counters after a throttled take = %v, want none", m)
	}
}

// testAttackLoginRace: parallel logins never get more places than the
// tightest limit, and a refused one keeps nothing on the other counters.
// testRecordLoginSettles: a login's user write settles its attack
// protection as ClearLogin does, blocked user or not, refused for its
// upstream tenant or not, and settles nothing when the write fails.
func testRecordLoginSettles(t *testing.T, s store.Store) {
	ctx := t.Context()
	const id, bucket, interval = "dave@example.com", "ip:192.0.2.10", time.Minute
	take := store.LoginTake{Bucket: bucket, Burst: 2, Interval: interval, Now: t0, Counters: []store.CounterTake{
		{Counter: store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: id, IP: "192.0.2.10"}, Limit: 5, ExpireBefore: t0.Add(-time.Hour), Block: true},
		{Counter: store.AttackCounter{Kind: store.AttackUpstreamBudget, Connection: "c1", Identifier: id}, Limit: 5, ExpireBefore: t0.Add(-time.Hour), Block: true},
	}}
	settlement := &store.LoginClear{Connection: "c1", Identifier: id, IP: "192.0.2.10", Bucket: bucket, Interval: interval}
	other := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c2", Identifier: id, IP: "192.0.2.10"}
	elsewhere := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: id, IP: "192.0.2.99"}
	// takeOne takes one attempt and reports the tokens left after it.
	takeOne := func() int {
		t.Helper()
		got, err := s.TakeLogin(ctx, take)
		must(t, err)
		if got.TokenRefused || got.Refused != -1 {
			t.Fatalf("take = %+v, want allowed", got)
		}
		return got.Left
	}
	connections := func() []string {
		t.Helper()
		cs, err := s.ListAttackCounters(ctx, id, time.Time{})
		must(t, err)
		var names []string
		for _, c := range cs {
			names = append(names, c.Connection+" "+c.IP)
		}
		slices.Sort(names)
		return names
	}
	_, err := s.TakeAttempt(ctx, other, 5, t0, t0.Add(-time.Hour))
	must(t, err)
	_, err = s.TakeAttempt(ctx, elsewhere, 5, t0, t0.Add(-time.Hour))
	must(t, err)
	// What a login's settlement leaves: the other connection's counter and
	// the one of the identifier at another IP.
	kept := []string{"c1 192.0.2.99", "c2 192.0.2.10"}

	for _, tc := range []struct {
		name  string
		event bool
	}{{"with its event", true}, {"without an event", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if left := takeOne(); left != 1 {
				t.Fatalf("tokens left after a take = %d, want 1", left)
			}
			var e *store.LogEvent
			if tc.event {
				e = &store.LogEvent{Type: "sepft", UserID: "settled", Doc: json.RawMessage(`{}`)}
			}
			must(t, s.RecordLogin(ctx, loginOf("settled"), false, e, settlement))
			if got := connections(); !slices.Equal(got, kept) {
				t.Errorf("counters after the login's write %q, want %q", got, kept)
			}
			if tc.event && e.ID == "" {
				t.Errorf("event not stored")
			}
			// The token came back: the next take leaves 1 again, not 0.
			if left := takeOne(); left != 1 {
				t.Errorf("tokens left after settling and taking again = %d, want 1", left)
			}
			must(t, s.ClearLogin(ctx, *settlement))
		})
	}

	// A blocked user's write settles too: the password was right.
	_, err = s.PatchUser(ctx, "settled", func(u *store.User) error { u.Blocked = true; return nil })
	must(t, err)
	takeOne()
	must(t, s.RecordLogin(ctx, loginOf("settled"), false, &store.LogEvent{Type: "sepft", UserID: "settled", Doc: json.RawMessage(`{}`)}, settlement))
	if got := connections(); !slices.Equal(got, kept) {
		t.Errorf("counters after a blocked user's write %q, want %q", got, kept)
	}

	// A login refused for its upstream tenant settles too: the password
	// was right. It writes nothing else.
	mine := loginOf("tenant-a")
	mine.UpstreamTenant = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	must(t, s.RecordLogin(ctx, mine, false, nil, nil))
	takeOne()
	theirs := loginOf("tenant-a")
	theirs.UpstreamTenant = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	err = s.RecordLogin(ctx, theirs, false, &store.LogEvent{Type: "sepft", UserID: "tenant-a", Doc: json.RawMessage(`{}`)}, settlement)
	wantErr(t, "RecordLogin of another tenant", err, store.ErrUpstreamTenantMismatch)
	if got := connections(); !slices.Equal(got, kept) {
		t.Errorf("counters after a login refused for its tenant %q, want %q", got, kept)
	}
	if left := takeOne(); left != 1 {
		t.Errorf("tokens left after a login refused for its tenant and another take = %d, want 1", left)
	}
	must(t, s.ClearLogin(ctx, *settlement))

	// A write that fails settles nothing.
	_, err = s.PatchUser(ctx, "settled", func(u *store.User) error { u.Blocked = false; return nil })
	must(t, err)
	takeOne()
	es, _, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{PerPage: 1})
	must(t, err)
	if len(es) == 0 {
		t.Fatal("no log event to collide with")
	}
	err = s.RecordLogin(ctx, loginOf("settled"), false, &store.LogEvent{ID: es[0].ID, Type: "sepft", Doc: json.RawMessage(`{}`)}, settlement)
	wantErr(t, "RecordLogin with a duplicate event ID", err, store.ErrConflict)
	if want := []string{"c1 ", "c1 192.0.2.10", "c1 192.0.2.99", "c2 192.0.2.10"}; !slices.Equal(connections(), want) {
		t.Errorf("counters after a failed write %q, want %q", connections(), want)
	}
	if left := takeOne(); left != 0 {
		t.Errorf("tokens left after a failed write and another take = %d, want 0", left)
	}
}

func testAttackLoginRace(t *testing.T, s store.Store) {
	const limit, parallel = 4, 30
	bf := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: "dave@example.com", IP: "198.51.100.9"}
	budget := store.AttackCounter{Kind: store.AttackUpstreamBudget, Connection: "c1", Identifier: "dave@example.com"}
	now := time.Now()
	take := store.LoginTake{Bucket: "ip:login-race", Burst: 100, Interval: time.Hour, Now: now, Counters: []store.CounterTake{
		{Counter: bf, Limit: 10, ExpireBefore: now.Add(-time.Hour), Block: true},
		{Counter: budget, Limit: limit, ExpireBefore: now.Add(-time.Hour), Block: true},
	}}
	var (
		wg      sync.WaitGroup
		allowed atomic.Int32
	)
	for range parallel {
		wg.Go(func() {
			got, err := s.TakeLogin(t.Context(), take)
			if err != nil {
				t.Error(err)
				return
			}
			if got.Refused == -1 && !got.TokenRefused {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != limit {
		t.Fatalf("%d of %d parallel logins allowed, want %d", got, parallel, limit)
	}
	cs, err := s.ListAttackCounters(t.Context(), "dave@example.com", time.Time{})
	must(t, err)
	for _, c := range cs {
		if c.Attempts != limit {
			t.Errorf("counter %s holds %d attempts, want %d", c.Kind, c.Attempts, limit)
		}
	}
}

// testAttackWritersTogether runs every writer of several attack rows at
// once on a few identifiers and addresses: takes, settlements alone and in
// a login's user write, the user-blocks DELETE and the purge. On
// PostgreSQL each holds its row locks until it commits, so two that lock
// the same rows in different orders deadlock, and one fails with 40P01;
// none may fail.
func testAttackWritersTogether(t *testing.T, s store.Store) {
	ctx := t.Context()
	const interval = time.Minute
	ids, ips := []string{"erin@example.com", "frank@example.com"}, []string{"192.0.2.20", "192.0.2.21"}
	take := func(id, ip string) store.LoginTake {
		now := time.Now()
		return store.LoginTake{Bucket: "ip:" + ip, Burst: 1000, Interval: interval, Now: now, Counters: []store.CounterTake{
			{Counter: store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: id, IP: ip}, Limit: 1000, ExpireBefore: now.Add(-time.Hour), Block: true},
			{Counter: store.AttackCounter{Kind: store.AttackUpstreamBudget, Connection: "c1", Identifier: id}, Limit: 1000, ExpireBefore: now.Add(-time.Hour), Block: true},
		}}
	}
	settlement := func(id, ip string) *store.LoginClear {
		return &store.LoginClear{Connection: "c1", Identifier: id, IP: ip, Bucket: "ip:" + ip, Interval: interval}
	}
	writers := []func(i int) error{
		func(i int) error { _, err := s.TakeLogin(ctx, take(ids[i%2], ips[i/2%2])); return err },
		func(i int) error { return s.ClearLogin(ctx, *settlement(ids[i%2], ips[i/2%2])) },
		func(i int) error {
			u := loginOf("together-" + ids[i%2])
			return s.RecordLogin(ctx, u, false, &store.LogEvent{Type: "sepft", UserID: u.UserID, Doc: json.RawMessage(`{}`)}, settlement(ids[i%2], ips[i/2%2]))
		},
		func(i int) error { _, err := s.DeleteAttackCounters(ctx, "", ids[i%2]); return err },
		func(int) error {
			_, err := s.PruneAttack(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour), 10)
			return err
		},
	}
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 * len(writers) {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline); i++ {
				if err := writers[w%len(writers)](i); err != nil {
					t.Errorf("writer %d: %v", w%len(writers), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// testAttackLoginKeyOrder: counters out of key order are refused before
// anything is taken.
func testAttackLoginKeyOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now()
	take := store.LoginTake{Bucket: "ip:192.0.2.30", Burst: 3, Interval: time.Minute, Now: now, Counters: []store.CounterTake{
		{Counter: store.AttackCounter{Kind: store.AttackUpstreamBudget, Connection: "c1", Identifier: "gina@example.com"}, Limit: 5, ExpireBefore: now.Add(-time.Hour), Block: true},
		{Counter: store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: "gina@example.com", IP: "192.0.2.30"}, Limit: 5, ExpireBefore: now.Add(-time.Hour), Block: true},
	}}
	if _, err := s.TakeLogin(ctx, take); err == nil {
		t.Fatal("TakeLogin with counters out of key order succeeded")
	}
	if cs, err := s.ListAttackCounters(ctx, "gina@example.com", time.Time{}); err != nil || len(cs) != 0 {
		t.Fatalf("counters after a refused take: %+v, %v", cs, err)
	}
	slices.Reverse(take.Counters)
	got, err := s.TakeLogin(ctx, take)
	must(t, err)
	if got.Left != 2 || !got.Counted[0] || !got.Counted[1] {
		t.Fatalf("take in key order = %+v, want both counted, 2 tokens left", got)
	}
}

// testAttackLoginCases: what TakeLogin answers and leaves, case by case,
// for the cases testAttackLogin does not reach: no bucket, no counters,
// an expired full counter, a refusal after a passed-over counter, and the
// give-back of a counter its take had reset.
func testAttackLoginCases(t *testing.T, s store.Store) {
	ctx := t.Context()
	const interval = time.Minute
	old := t0.Add(-2 * time.Hour)
	for i, c := range []struct {
		name     string
		bucket   bool
		kinds    string // one counter per letter, in key order
		block    string // 'b' where the counter blocks
		full     string // 'f' full since now, 'o' full since before the expiry, '-' empty
		want     store.LoginTaken
		attempts []int // each counter's attempts after the take
	}{
		{name: "no bucket", kinds: "ab", block: "bb", full: "--",
			want: store.LoginTaken{Refused: -1, Counted: []bool{true, true}}, attempts: []int{1, 1}},
		{name: "bucket and no counter", bucket: true,
			want: store.LoginTaken{Refused: -1, Counted: []bool{}, Left: 2, Next: ms(t0)}},
		{name: "expired full counter", bucket: true, kinds: "ab", block: "bb", full: "o-",
			want: store.LoginTaken{Refused: -1, Counted: []bool{true, true}, Left: 2, Next: ms(t0)}, attempts: []int{1, 1}},
		{name: "refused after a passed-over counter", bucket: true, kinds: "abc", block: "-bb", full: "f-f",
			want: store.LoginTaken{Refused: 2, Counted: []bool{false, false, false}, Left: 2, Next: ms(t0)}, attempts: []int{2, 0, 2}},
		{name: "give-back of a reset counter", kinds: "ab", block: "bb", full: "of",
			want: store.LoginTaken{Refused: 1, Counted: []bool{false, false}}, attempts: []int{0, 2}},
	} {
		for _, users := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/users=%v", c.name, users), func(t *testing.T) {
				id := fmt.Sprintf("case%d-%v@example.com", i, users)
				take := store.LoginTake{Now: t0}
				if users {
					// Reading users in the take's round trip changes nothing
					// of the take.
					take.Users = &store.UsersByEmail{Connection: "c1", Email: id}
				}
				if c.bucket {
					take.Bucket, take.Burst, take.Interval = "ip:case"+id, 3, interval
				}
				for k := range c.kinds {
					counter := store.AttackCounter{Kind: c.kinds[k : k+1], Connection: "c1", Identifier: id}
					switch c.full[k] {
					case 'f', 'o':
						at := t0
						if c.full[k] == 'o' {
							at = old
						}
						for range 2 {
							_, err := s.TakeAttempt(ctx, counter, 2, at, at.Add(-time.Hour))
							must(t, err)
						}
					}
					take.Counters = append(take.Counters, store.CounterTake{Counter: counter, Limit: 2,
						ExpireBefore: t0.Add(-time.Hour), Block: c.block[k] == 'b'})
				}
				got, err := s.TakeLogin(ctx, take)
				must(t, err)
				if got.TokenRefused != c.want.TokenRefused || got.Refused != c.want.Refused || !slices.Equal(got.Counted, c.want.Counted) ||
					got.Left != c.want.Left || !got.Next.Equal(c.want.Next) {
					t.Errorf("take = %+v, want %+v", got, c.want)
				}
				cs, err := s.ListAttackCounters(ctx, id, time.Time{})
				must(t, err)
				var attempts []int
				for _, c := range cs {
					attempts = append(attempts, c.Attempts)
				}
				if !slices.Equal(attempts, c.attempts) {
					t.Errorf("attempts after the take = %v, want %v", attempts, c.attempts)
				}
				if len(got.Users) != 0 || (!users && got.Users != nil) {
					t.Errorf("users = %v, want none", got.Users)
				}
			})
		}
	}
}

// testAttackLoginUsers: a take asked for the users of an email on a
// connection returns them as GetUser does, in user_id order, at most
// MaxUsersByEmail, and no other connection's or email's; a store may
// also not read them (nil).
func testAttackLoginUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []*store.User
	for i := range store.MaxUsersByEmail + 1 {
		u := fullUser(fmt.Sprintf("waad|%d", store.MaxUsersByEmail-i))
		u.Connection, u.Email = "c1", "Dana@Example.com"
		_, err := s.UpsertUser(ctx, u)
		must(t, err)
		stored, err := s.GetUser(ctx, u.UserID)
		must(t, err)
		want = append(want, stored)
	}
	slices.SortFunc(want, func(a, b *store.User) int { return strings.Compare(a.UserID, b.UserID) })
	want = want[:store.MaxUsersByEmail]
	for _, u := range []*store.User{
		{UserID: "waad|other-connection", Connection: "c2", Email: "dana@example.com", CreatedAt: t0, UpdatedAt: t0},
		{UserID: "waad|other-email", Connection: "c1", Email: "dana2@example.com", CreatedAt: t0, UpdatedAt: t0},
	} {
		_, err := s.UpsertUser(ctx, u)
		must(t, err)
	}
	take := func(email string) store.LoginTaken {
		t.Helper()
		got, err := s.TakeLogin(ctx, store.LoginTake{Bucket: "ip:users", Burst: 10, Interval: time.Minute, Now: t0,
			Counters: []store.CounterTake{{Counter: store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: email},
				Limit: 10, ExpireBefore: t0.Add(-time.Hour), Block: true}},
			Users: &store.UsersByEmail{Connection: "c1", Email: email}})
		must(t, err)
		if got.TokenRefused || got.Refused != -1 || !slices.Equal(got.Counted, []bool{true}) {
			t.Fatalf("take for %s = %+v, want everything taken", email, got)
		}
		return got
	}
	got := take("dana@example.com")
	if got.Users == nil {
		t.Skip("this store does not read users in the take")
	}
	if len(got.Users) != len(want) {
		t.Fatalf("users = %d, want %d", len(got.Users), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got.Users[i], want[i]) {
			t.Errorf("user %d = %+v, want %+v", i, got.Users[i], want[i])
		}
	}
	if got := take("nobody@example.com"); got.Users == nil || len(got.Users) != 0 {
		t.Errorf("users of an unknown email = %v, want an empty list", got.Users)
	}
}

// testAttackLoginUsersTakeOnce: however many users the take reads with
// it (none, one, the limit, more), it takes one token and one attempt
// per counter, as a take without users does.
func testAttackLoginUsersTakeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, n := range []int{0, 1, store.MaxUsersByEmail, store.MaxUsersByEmail + 1} {
		email := fmt.Sprintf("once%d@example.com", n)
		for i := range n {
			u := fullUser(fmt.Sprintf("waad|once%d-%d", n, i))
			u.Connection, u.Email = "c1", email
			_, err := s.UpsertUser(ctx, u)
			must(t, err)
		}
		for k := 1; k <= 2; k++ {
			got, err := s.TakeLogin(ctx, store.LoginTake{Bucket: "ip:" + email, Burst: 3, Interval: time.Minute, Now: t0,
				Counters: []store.CounterTake{{Counter: store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c1", Identifier: email},
					Limit: 10, ExpireBefore: t0.Add(-time.Hour), Block: true}},
				Users: &store.UsersByEmail{Connection: "c1", Email: email}})
			must(t, err)
			if got.TokenRefused || got.Refused != -1 || got.Left != 3-k {
				t.Errorf("%d users, take %d: %+v, want %d tokens left", n, k, got, 3-k)
			}
			if got.Users != nil && len(got.Users) != min(n, store.MaxUsersByEmail) {
				t.Errorf("%d users, take %d: %d read", n, k, len(got.Users))
			}
			cs, err := s.ListAttackCounters(ctx, email, time.Time{})
			must(t, err)
			if len(cs) != 1 || cs[0].Attempts != k {
				t.Errorf("%d users, take %d: counters %+v, want %d attempts", n, k, cs, k)
			}
		}
	}
}
