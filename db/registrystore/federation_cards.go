package registrystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
	"github.com/theprotocol-dev/theprotocol/federation/cardsig"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// StoredCard is a signed card as this registry keeps it: who relayed it
// here (Via, "" for its own) and its place in this registry's feed (Seq).
type StoredCard struct {
	cardsig.Signed
	Via        string
	Seq        int64
	ReceivedAt time.Time
}

// FederationCards is the registry's signed card store: its own cards,
// signed from the pending changes the agent tables' triggers record, and
// those pulled from peers; the feed its peers pull; the keys that verify
// them; and the pull cursors. Every write that assigns a feed position
// holds one advisory lock to commit, so positions are in commit order.
type FederationCards struct {
	pool *pgxpool.Pool
	q    *registrydb.Queries
}

// NewFederationCards returns the card store of the registry database
// behind pool.
func NewFederationCards(pool *pgxpool.Pool) *FederationCards {
	return &FederationCards{pool: pool, q: registrydb.New()}
}

func (f *FederationCards) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.NewStore(f.pool, "registry").Tx(ctx, fn)
}

// SignFunc signs this registry's card c.
type SignFunc func(c cardsig.Card) (cardsig.Signed, error)

// SignPending signs, as origin, every own agent whose record changed since
// it was last signed: a card (its body the agent card as published, or
// empty without one) for an active agent, a tombstone for a deregistered
// one, each at the next version. It returns how many it signed.
func (f *FederationCards) SignPending(ctx context.Context, origin string, sign SignFunc, now time.Time) (int, error) {
	const page = 200
	total := 0
	for range 1000 {
		n := 0
		err := f.tx(ctx, func(tx pgx.Tx) error {
			if err := f.q.FederationCardLock(ctx, tx); err != nil {
				return err
			}
			rows, err := f.q.FederationCardPendingTake(ctx, tx, registrydb.FederationCardPendingTakeParams{Origin: origin, MaxRows: page})
			if err != nil {
				return err
			}
			dids, marks := make([]string, 0, len(rows)), make([]int64, 0, len(rows))
			for _, r := range rows {
				c := cardsig.Card{DID: r.Did, Origin: origin, Version: r.SignedVersion + 1, Deleted: r.Status != "active", SignedAt: now}
				if !c.Deleted && r.Card != nil {
					// Re-encoded from the stored card, so the signed body
					// is the canonical encoding whatever jsonb did to it.
					var ac registry.AgentCard
					if err := json.Unmarshal(r.Card, &ac); err != nil {
						return fmt.Errorf("card of %s: %w", r.Did, err)
					}
					if c.Body, err = json.Marshal(ac); err != nil {
						return err
					}
				}
				s, err := sign(c)
				if err != nil {
					return fmt.Errorf("sign card of %s: %w", r.Did, err)
				}
				if err := f.put(ctx, tx, StoredCard{Signed: s}, now); err != nil {
					return err
				}
				dids, marks = append(dids, r.Did), append(marks, r.Mark)
			}
			n = len(dids)
			return f.q.FederationCardPendingDelete(ctx, tx, registrydb.FederationCardPendingDeleteParams{Dids: dids, Marks: marks})
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < page {
			break
		}
	}
	return total, nil
}

func (f *FederationCards) put(ctx context.Context, tx pgx.Tx, c StoredCard, now time.Time) error {
	seq, err := f.q.FederationCardNextSeq(ctx, tx)
	if err != nil {
		return err
	}
	body := c.Body
	if body == nil {
		body = []byte{}
	}
	return f.q.FederationCardUpsert(ctx, tx, registrydb.FederationCardUpsertParams{
		Origin: c.Origin, Did: c.DID, Version: c.Version, Deleted: c.Deleted, Body: body, SignedAt: c.SignedAt.UTC(),
		KeyID: c.KeyID, Signature: c.Signature, Hops: int32(c.Hops), Via: c.Via, Seq: seq, Now: now,
	})
}

func storedFromRow(r registrydb.FederationCard) StoredCard {
	var body []byte
	if len(r.Body) > 0 {
		body = r.Body
	}
	return StoredCard{
		Signed: cardsig.Signed{Card: cardsig.Card{DID: r.Did, Origin: r.Origin, Version: r.Version, Deleted: r.Deleted, Body: body,
			SignedAt: r.SignedAt.UTC(), KeyID: r.KeyID}, Signature: r.Signature, Hops: int(r.Hops)},
		Via: r.Via, Seq: r.Seq, ReceivedAt: r.ReceivedAt.UTC(),
	}
}

// FeedQuery is a peer's pull: the cards after its cursor that this
// registry may relay to it.
type FeedQuery struct {
	Caller   string // the pulling peer's registry ID
	IDPrefix string // "spiffe://<trust domain>/teg/": peer rows are keyed by SPIFFE ID
	After    int64
	MaxHops  int
	Limit    int
}

// Feed returns the cards q may see, in feed order: signed here or received
// from a live peer, from an origin not suspended or revoked here, below
// the hop bound, and not originated by or received from the caller.
func (f *FederationCards) Feed(ctx context.Context, q FeedQuery) ([]StoredCard, error) {
	rows, err := f.q.FederationCardFeed(ctx, f.pool, registrydb.FederationCardFeedParams{
		AfterSeq: q.After, MaxHops: int32(q.MaxHops), Caller: q.Caller, IDPrefix: q.IDPrefix, MaxRows: int32(q.Limit),
	})
	if err != nil {
		return nil, err
	}
	out := make([]StoredCard, len(rows))
	for i, r := range rows {
		out[i] = storedFromRow(r)
	}
	return out, nil
}

// View returns the cards of did this registry currently sees, one per
// origin (tombstones included): its own, and those received from a live
// peer whose origin is not cut off. idPrefix as in FeedQuery.
func (f *FederationCards) View(ctx context.Context, did, idPrefix string) ([]StoredCard, error) {
	rows, err := f.q.FederationCardView(ctx, f.pool, registrydb.FederationCardViewParams{Did: did, IDPrefix: idPrefix})
	if err != nil {
		return nil, err
	}
	out := make([]StoredCard, len(rows))
	for i, r := range rows {
		out[i] = storedFromRow(r)
	}
	return out, nil
}

// CardKey is an origin's verified card-signing key.
type CardKey struct {
	Attestation cardsig.KeyAttestation
	VerifiedAt  time.Time
}

// Key returns origin's key keyID; NotFound when it was never verified here.
func (f *FederationCards) Key(ctx context.Context, origin, keyID string) (CardKey, error) {
	r, err := f.q.FederationCardKeyGet(ctx, f.pool, registrydb.FederationCardKeyGetParams{Registry: origin, KeyID: keyID})
	if errors.Is(err, pgx.ErrNoRows) {
		return CardKey{}, apperr.New(apperr.NotFound, "no verified key %s of %s", keyID, origin)
	}
	if err != nil {
		return CardKey{}, err
	}
	var a cardsig.KeyAttestation
	if err := json.Unmarshal(r.Attestation, &a); err != nil {
		return CardKey{}, fmt.Errorf("stored attestation of %s: %w", origin, err)
	}
	return CardKey{Attestation: a, VerifiedAt: r.VerifiedAt.UTC()}, nil
}

// PutKey stores an attestation the caller verified (a no-op when the key
// is known).
func (f *FederationCards) PutKey(ctx context.Context, a cardsig.KeyAttestation, now time.Time) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return f.q.FederationCardKeyPut(ctx, f.pool, registrydb.FederationCardKeyPutParams{
		Registry: a.Registry, KeyID: a.KeyID, PublicKey: a.PublicKey, Attestation: raw, Now: now,
	})
}

// Cursor is how far this registry has pulled peer's feed (0 at first).
func (f *FederationCards) Cursor(ctx context.Context, peer string) (int64, error) {
	c, err := f.q.FederationSyncCursorGet(ctx, f.pool, peer)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return c, err
}

// ApplyResult says what a pulled page changed.
type ApplyResult struct {
	Stored int // new or newer cards kept
	Stale  int // already known at that version (or a longer path)
}

// Apply keeps the verified cards of one page pulled from peer and moves
// peer's cursor to next, in one transaction: a card is kept when it is new
// or newer than the one held for its origin and DID, or the same version
// by a shorter path; it is stored with Via = peer and the hops it carries
// (the caller has counted the relay). Each kept card gets a new feed
// position, so it is relayed onward.
func (f *FederationCards) Apply(ctx context.Context, peer string, cards []cardsig.Signed, next int64, now time.Time) (ApplyResult, error) {
	var res ApplyResult
	err := f.tx(ctx, func(tx pgx.Tx) error {
		res = ApplyResult{}
		if err := f.q.FederationCardLock(ctx, tx); err != nil {
			return err
		}
		for _, c := range cards {
			cur, err := f.q.FederationCardGet(ctx, tx, registrydb.FederationCardGetParams{Origin: c.Origin, Did: c.DID})
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			case c.Version < cur.Version, c.Version == cur.Version && (c.Hops >= int(cur.Hops) || cur.Via == ""):
				res.Stale++
				continue
			}
			if err := f.put(ctx, tx, StoredCard{Signed: c, Via: peer}, now); err != nil {
				return err
			}
			res.Stored++
		}
		return f.q.FederationSyncCursorSet(ctx, tx, registrydb.FederationSyncCursorSetParams{Peer: peer, Cursor: next, Now: now})
	})
	return res, err
}
