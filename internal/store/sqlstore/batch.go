package sqlstore

import (
	"context"
	"sync"
)

// batcher hands items to one goroutine that processes them in batches:
// whatever is submitted while one batch is processed becomes the next
// batch, so a quiet store processes each item at once and a busy one
// shares the cost of a commit among many. It serves the SQLite group
// commit (group_commit.go) and the PostgreSQL log appends (log_batch.go).
type batcher[T any] struct {
	// in is unbuffered: an item is handed over or not at all, so close
	// cannot strand one in a buffer.
	in       chan T
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

// newBatcher starts the goroutine that calls process with at most max
// items at a time. process must not keep the slice.
func newBatcher[T any](max int, process func([]T)) *batcher[T] {
	b := &batcher[T]{in: make(chan T), stop: make(chan struct{}), stopped: make(chan struct{})}
	go b.run(max, process)
	return b
}

// submit hands item over. It fails with errStoreClosed after close, or
// with ctx's error if ctx ends first; either way item is not processed.
func (b *batcher[T]) submit(ctx context.Context, item T) error {
	select {
	case b.in <- item:
		return nil
	case <-b.stop:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close waits for the batch in progress; later submits fail.
func (b *batcher[T]) close() {
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.stopped
}

func (b *batcher[T]) run(max int, process func([]T)) {
	defer close(b.stopped)
	batch := make([]T, 0, max)
	for {
		select {
		case item := <-b.in:
			batch = append(batch[:0], item)
		case <-b.stop:
			return
		}
	gather:
		for len(batch) < max {
			select {
			case item := <-b.in:
				batch = append(batch, item)
			default:
				break gather
			}
		}
		process(batch)
	}
}
