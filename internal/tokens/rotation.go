package tokens

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// MaxTokenLifetime bounds the lifetime of every token Gatehouse signs
// (Auth0's maximum for API access tokens, 30 days). A previous signing key
// stays published that long (and retireGrace) after it stopped signing, so
// that every token it signed verifies until it expires.
const MaxTokenLifetime = 30 * 24 * time.Hour

// ReloadEvery is how often a serving process reloads the keys (Run): it
// bounds how long a replica that missed another's rotation goes on signing
// with the key that rotation replaced.
const ReloadEvery = 30 * time.Second

// retireGrace is how long a previous key stays published past
// MaxTokenLifetime after it stopped being current: a replica that missed
// the rotation signs with it until its next reload, and ParseJWT accepts a
// token ReplicaSkew past its exp.
const retireGrace = ReloadEvery + ReplicaSkew

// EnsureNext stores a next key when there is none. Relying parties cache
// the JWKS; a key that is published as next before a rotation promotes it
// is known to them before it signs anything.
func (k *Keys) EnsureNext(ctx context.Context) error {
	if k.set.Load().hasNext {
		return nil
	}
	sk, err := newSigningKey(k.sealer, store.KeyNext, time.Now())
	if err != nil {
		return err
	}
	inserted, err := k.ks.InsertSigningKeyIfNone(ctx, sk)
	if err != nil {
		return fmt.Errorf("tokens: store next signing key: %w", err)
	}
	if inserted {
		k.logger.InfoContext(ctx, "created next signing key", "kid", sk.KID)
	}
	return k.Reload(ctx)
}

// Rotate makes the next key current and the current one previous, and
// creates a new next key, which it returns. Replicas rotating at once
// rotate once: the store applies only the rotation that still sees the
// current key it read, and the others return the winner's next key.
func (k *Keys) Rotate(ctx context.Context) (*store.SigningKey, error) {
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	if err := k.EnsureNext(ctx); err != nil {
		return nil, err
	}
	// A reload that failed in between may have left no signing key; the
	// store would then rotate nothing and answer with the existing next
	// key as if it had.
	current := k.KID()
	if current == "" {
		return nil, ErrNoSigningKey
	}
	return k.rotateFrom(ctx, current)
}

func (k *Keys) rotateFrom(ctx context.Context, current string) (*store.SigningKey, error) {
	next, err := newSigningKey(k.sealer, store.KeyNext, time.Now())
	if err != nil {
		return nil, err
	}
	// The rotation time is taken after the key generation, which can take
	// a second: this process signs with the current key until the reload
	// below, and the key's current_until must not precede that by more
	// than retireGrace allows for.
	rotated, err := k.ks.RotateSigningKeys(ctx, current, next, time.Now())
	if err != nil {
		return nil, fmt.Errorf("tokens: rotate signing keys: %w", err)
	}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	if rotated {
		k.logger.InfoContext(ctx, "rotated signing keys", "previous", current, "current", k.KID(), "next", next.KID)
		return next, nil
	}
	rows, err := k.ks.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tokens: list signing keys: %w", err)
	}
	for _, r := range rows {
		if r.State == store.KeyNext && r.RevokedAt == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("tokens: rotate signing keys: no next key after a concurrent rotation")
}

// Revoke revokes a previous key and stops publishing and accepting it at
// once; the current and next keys cannot be revoked (store.ErrKeyInUse).
// Once the store revoked it, a reload that fails is logged, not returned:
// the key is dropped here all the same, the other processes learn it from
// the store, and the periodic reload catches up on the rest.
func (k *Keys) Revoke(ctx context.Context, kid string) (*store.SigningKey, error) {
	row, err := k.ks.RevokeSigningKey(ctx, kid, time.Now())
	if err != nil {
		return nil, fmt.Errorf("tokens: revoke signing key: %w", err)
	}
	k.logger.InfoContext(ctx, "revoked signing key", "kid", kid)
	if err := k.Reload(ctx); err != nil {
		k.forget(kid)
		k.logger.ErrorContext(ctx, "reloading signing keys after a revocation failed: the revoked key is dropped, the rest follows at the next reload", "error", err)
	}
	return row, nil
}

// Run reloads the keys every reload, so that a rotation or revocation on
// another replica takes effect here even when its notification (Refresh)
// was lost, and rotates when the current key has been current for
// rotateEvery (0: never). It returns when ctx is done.
func (k *Keys) Run(ctx context.Context, reload, rotateEvery time.Duration) {
	t := time.NewTicker(reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := k.Reload(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			k.logger.ErrorContext(ctx, "reloading signing keys failed", "error", err)
			continue
		}
		set := k.set.Load()
		if rotateEvery <= 0 || set.signer == nil || set.currentSince.IsZero() || time.Since(set.currentSince) < rotateEvery {
			continue
		}
		if err := k.EnsureNext(ctx); err != nil {
			k.logger.ErrorContext(ctx, "scheduled key rotation failed", "error", err)
			continue
		}
		if _, err := k.rotateFrom(ctx, set.signer.kid); err != nil {
			k.logger.ErrorContext(ctx, "scheduled key rotation failed", "error", err)
		}
	}
}
