package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/federation/cardsig"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// Card sync defaults.
const (
	DefaultMaxHops  = 4   // a card travels at most this many relays from its origin
	DefaultPageSize = 200 // cards per pull
	MaxPageSize     = 1000
	// MaxFeedBytes bounds a pulled page's encoded size.
	MaxFeedBytes = 32 << 20
)

// CardStore is the registry's signed card store
// (*registrystore.FederationCards implements it).
type CardStore interface {
	SignPending(ctx context.Context, origin string, sign registrystore.SignFunc, now time.Time) (int, error)
	Feed(ctx context.Context, q registrystore.FeedQuery) ([]registrystore.StoredCard, error)
	View(ctx context.Context, did, idPrefix string) ([]registrystore.StoredCard, error)
	Key(ctx context.Context, origin, keyID string) (registrystore.CardKey, error)
	PutKey(ctx context.Context, a cardsig.KeyAttestation, now time.Time) error
	Cursor(ctx context.Context, peer string) (int64, error)
	Apply(ctx context.Context, peer string, cards []cardsig.Signed, next int64, now time.Time) (registrystore.ApplyResult, error)
}

// FeedPage is one page of a registry's card feed, as served over mTLS:
// the cards, the attestations of the keys that signed them, and the
// cursor to pull from next.
type FeedPage struct {
	Cards []cardsig.Signed         `json:"cards"`
	Keys  []cardsig.KeyAttestation `json:"keys"`
	Next  int64                    `json:"next"`
}

// PeerLink is what the sync needs of a peer: whether its licence is active
// here, and its mTLS base URL.
type PeerLink struct {
	Active  bool
	BaseURL string
}

// CardSync signs this registry's agent cards, serves them (and those it
// relays) to its peers, and pulls, verifies and keeps its peers' cards
// (ADR 0033). Every card carries its origin registry's Ed25519 signature;
// the key is bound to the origin's SPIFFE identity by an attestation the
// receiver checks against the frame's bundle, so a relay can neither forge
// nor alter a card. Deregistrations travel as signed tombstones.
type CardSync struct {
	Self        string
	TrustDomain spiffeid.TrustDomain
	Store       CardStore
	// Key is the registry key (the one its tokens are signed with).
	Key ed25519.PrivateKey
	// Attest binds Key to this registry's current SVID (cardsig.Attest).
	Attest func(pub ed25519.PublicKey, now time.Time) (cardsig.KeyAttestation, error)
	// Bundles verify other registries' attestations (the frame's bundle).
	Bundles x509bundle.Source
	// Peer reports a peer's licence and URL (by registry ID).
	Peer func(ctx context.Context, registry string) (PeerLink, error)
	// Fetch pulls a page of the feed of the peer at baseURL after the
	// cursor, over mTLS, authenticating the peer as registry; it returns
	// the page and its encoded size.
	Fetch    func(ctx context.Context, registry, baseURL string, after int64, limit int) (FeedPage, int64, error)
	MaxHops  int
	PageSize int
	Metrics  *CardMetrics
	Log      *slog.Logger
	Now      func() time.Time

	attestOnce sync.Mutex
	attested   bool
}

func (s *CardSync) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *CardSync) maxHops() int {
	if s.MaxHops <= 0 {
		return DefaultMaxHops
	}
	return s.MaxHops
}

func (s *CardSync) idPrefix() string { return "spiffe://" + s.TrustDomain.Name() + "/teg/" }

// ensureOwnKey stores this registry's own key attestation once per
// process, so the feed can hand it out with the cards it signed.
func (s *CardSync) ensureOwnKey(ctx context.Context) error {
	s.attestOnce.Lock()
	defer s.attestOnce.Unlock()
	if s.attested {
		return nil
	}
	pub := s.Key.Public().(ed25519.PublicKey)
	if _, err := s.Store.Key(ctx, s.Self, cardsig.KeyID(pub)); err == nil {
		s.attested = true
		return nil
	} else if !apperr.Is(err, apperr.NotFound) {
		return err
	}
	a, err := s.Attest(pub, s.now())
	if err != nil {
		return fmt.Errorf("attest the card key: %w", err)
	}
	if err := s.Store.PutKey(ctx, a, s.now()); err != nil {
		return err
	}
	s.attested = true
	return nil
}

// SignPending signs the own cards changed since they were last signed.
func (s *CardSync) SignPending(ctx context.Context) (int, error) {
	if err := s.ensureOwnKey(ctx); err != nil {
		return 0, err
	}
	n, err := s.Store.SignPending(ctx, s.Self, func(c cardsig.Card) (cardsig.Signed, error) {
		return cardsig.Sign(s.Key, c)
	}, s.now())
	if n > 0 {
		s.Metrics.signed.Add(float64(n))
	}
	return n, err
}

// Serve is the feed caller pulls: the cards after its cursor it may see
// (see registrystore.FederationCards.Feed), with the attestations of
// their keys. Own changes are signed first, so a pull sees them at once.
func (s *CardSync) Serve(ctx context.Context, caller string, after int64, limit int) (FeedPage, error) {
	if after < 0 {
		return FeedPage{}, apperr.New(apperr.Invalid, "after must not be negative")
	}
	if limit <= 0 || limit > MaxPageSize {
		limit = DefaultPageSize
	}
	if _, err := s.SignPending(ctx); err != nil {
		return FeedPage{}, err
	}
	rows, err := s.Store.Feed(ctx, registrystore.FeedQuery{Caller: caller, IDPrefix: s.idPrefix(), After: after, MaxHops: s.maxHops(), Limit: limit})
	if err != nil {
		return FeedPage{}, err
	}
	page := FeedPage{Cards: make([]cardsig.Signed, 0, len(rows)), Keys: []cardsig.KeyAttestation{}, Next: after}
	seen := map[[2]string]bool{}
	for _, r := range rows {
		page.Cards = append(page.Cards, r.Signed)
		page.Next = r.Seq
		k := [2]string{r.Origin, r.KeyID}
		if seen[k] {
			continue
		}
		seen[k] = true
		key, err := s.Store.Key(ctx, r.Origin, r.KeyID)
		if apperr.Is(err, apperr.NotFound) {
			// Only verified cards are stored, so this is a damaged row; the
			// receiver rejects the card for want of a key, and the feed
			// goes on.
			continue
		}
		if err != nil {
			return FeedPage{}, fmt.Errorf("key %s of %s: %w", r.KeyID, r.Origin, err)
		}
		page.Keys = append(page.Keys, key.Attestation)
	}
	return page, nil
}

// PullOnce pulls the next page of peer's feed and keeps what verifies:
// each attestation is checked against the frame's bundle, each card
// against its origin's attested key; a card that fails (forged, altered,
// signed by an unknown key, past the hop bound, malformed) is rejected and
// counted, never stored. The cursor moves past the page either way, with
// the kept cards, in one transaction. A peer whose licence is not active
// is not pulled (Active false).
func (s *CardSync) PullOnce(ctx context.Context, peer string) (activities.FederationPullResult, error) {
	link, err := s.Peer(ctx, peer)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return activities.FederationPullResult{}, nil
		}
		return activities.FederationPullResult{}, err
	}
	if !link.Active {
		return activities.FederationPullResult{}, nil
	}
	cursor, err := s.Store.Cursor(ctx, peer)
	if err != nil {
		return activities.FederationPullResult{}, err
	}
	limit := s.PageSize
	if limit <= 0 || limit > MaxPageSize {
		limit = DefaultPageSize
	}
	start := time.Now()
	page, size, err := s.Fetch(ctx, peer, link.BaseURL, cursor, limit)
	s.Metrics.pulls.WithLabelValues(result(err)).Inc()
	if err != nil {
		return activities.FederationPullResult{}, fmt.Errorf("pull cards from %s: %w", peer, err)
	}
	s.Metrics.bytes.Add(float64(size))
	if page.Next < cursor || len(page.Cards) > limit || len(page.Keys) > limit+1 {
		s.reject(peer, "bad_page", len(page.Cards))
		return activities.FederationPullResult{}, fmt.Errorf("pull cards from %s: a page moving the cursor back or longer than asked", peer)
	}
	keys := map[[2]string]ed25519.PublicKey{}
	for _, a := range page.Keys {
		if a.Registry == s.Self {
			continue
		}
		if err := a.Verify(s.Bundles, s.TrustDomain); err != nil {
			s.reject(peer, "bad_key", 1)
			s.log().Warn("card key attestation rejected", "peer", peer, "origin", a.Registry, "err", err)
			continue
		}
		keys[[2]string{a.Registry, a.KeyID}] = a.PublicKey
		if err := s.Store.PutKey(ctx, a, s.now()); err != nil {
			return activities.FederationPullResult{}, err
		}
	}
	kept := make([]cardsig.Signed, 0, len(page.Cards))
	rejected := 0
	for _, c := range page.Cards {
		reason, err := s.check(ctx, c, keys)
		if err != nil {
			return activities.FederationPullResult{}, err
		}
		if reason == "own" {
			continue
		}
		if reason != "" {
			rejected++
			s.reject(peer, reason, 1)
			s.log().Warn("signed card rejected", "peer", peer, "origin", c.Origin, "did", c.DID, "version", c.Version, "reason", reason)
			continue
		}
		c.Hops++
		kept = append(kept, c)
	}
	res, err := s.Store.Apply(ctx, peer, kept, page.Next, s.now())
	if err != nil {
		return activities.FederationPullResult{}, err
	}
	s.Metrics.stored.Add(float64(res.Stored))
	out := activities.FederationPullResult{
		Active: true, More: len(page.Cards) == limit, Received: len(page.Cards), Stored: res.Stored,
		Rejected: rejected, Bytes: size, Cursor: page.Next,
	}
	if out.Received > 0 {
		s.log().Info("card sync pull", "peer", peer, "received", out.Received, "stored", out.Stored, "rejected", out.Rejected,
			"bytes", size, "cursor", page.Next, "took", time.Since(start))
	}
	return out, nil
}

// check returns why c must be rejected ("" to keep it, "own" to skip a
// card of this registry coming back). Errors are the store's.
func (s *CardSync) check(ctx context.Context, c cardsig.Signed, keys map[[2]string]ed25519.PublicKey) (string, error) {
	if c.Origin == s.Self {
		return "own", nil
	}
	if c.Check() != nil || len(c.Signature) != ed25519.SignatureSize || c.Hops < 0 {
		return "malformed", nil
	}
	if c.Hops+1 > s.maxHops() {
		return "hops", nil
	}
	if !c.Deleted && len(c.Body) > 0 {
		var ac registry.AgentCard
		if err := jsonStrict(c.Body, &ac); err != nil || ac.Validate() != nil {
			return "malformed", nil
		}
	}
	pub, ok := keys[[2]string{c.Origin, c.KeyID}]
	if !ok {
		k, err := s.Store.Key(ctx, c.Origin, c.KeyID)
		if apperr.Is(err, apperr.NotFound) {
			return "unknown_key", nil
		}
		if err != nil {
			return "", err
		}
		pub = k.Attestation.PublicKey
		keys[[2]string{c.Origin, c.KeyID}] = pub
	}
	if err := c.Verify(pub); err != nil {
		if errors.Is(err, cardsig.ErrBadSignature) {
			return "signature", nil
		}
		return "unknown_key", nil
	}
	return "", nil
}

func (s *CardSync) reject(peer, reason string, n int) {
	s.Metrics.rejected.WithLabelValues(reason).Add(float64(n))
	_ = peer
}

func (s *CardSync) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// CardView is a card as this registry currently sees it.
type CardView struct {
	DID      string          `json:"did"`
	Origin   string          `json:"origin"`
	Version  int64           `json:"version"`
	Deleted  bool            `json:"deleted"`
	Hops     int             `json:"hops"`
	Via      string          `json:"via,omitempty"`
	SignedAt time.Time       `json:"signed_at"`
	KeyID    string          `json:"key_id"`
	Card     json.RawMessage `json:"card,omitempty"` // the agent card as its origin signed it
}

// Cards returns the live (not tombstoned) signed cards of did this
// registry sees, one per origin: its own, and those held from a live peer
// whose origin is not suspended or revoked here. More than one origin is
// a conflict for the caller to show. Own changes are signed first.
func (s *CardSync) Cards(ctx context.Context, did string) ([]CardView, error) {
	if !registry.ValidDID(did) {
		return nil, apperr.New(apperr.Invalid, "%q is not an agent DID", clip(did))
	}
	if _, err := s.SignPending(ctx); err != nil {
		return nil, err
	}
	rows, err := s.Store.View(ctx, did, s.idPrefix())
	if err != nil {
		return nil, err
	}
	out := []CardView{}
	for _, r := range rows {
		if r.Deleted {
			continue
		}
		out = append(out, CardView{DID: r.DID, Origin: r.Origin, Version: r.Version, Hops: r.Hops, Via: r.Via,
			SignedAt: r.SignedAt, KeyID: r.KeyID, Card: json.RawMessage(r.Body)})
	}
	return out, nil
}

// HomeOf names the registries that signed a live card for did, as this
// registry sees them (none, one, or a conflict of several). For DID
// resolution.
func (s *CardSync) HomeOf(ctx context.Context, did string) ([]string, error) {
	cards, err := s.Cards(ctx, did)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(cards))
	for i, c := range cards {
		out[i] = c.Origin
	}
	return out, nil
}

// Origins names the registries whose live signed card claims account, as
// this registry sees them: the resolver's first source, so it only reads
// (this registry's own agents are found in its ledger before any card is
// asked, so its unsigned changes do not matter here). A developer wallet
// has no card.
func (s *CardSync) Origins(ctx context.Context, account string) ([]string, error) {
	if !registry.ValidDID(account) {
		return nil, nil
	}
	rows, err := s.Store.View(ctx, account, s.idPrefix())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		if !r.Deleted {
			out = append(out, r.Origin)
		}
	}
	return out, nil
}

// CardMetrics count the card sync.
type CardMetrics struct {
	signed   prometheus.Counter
	stored   prometheus.Counter
	bytes    prometheus.Counter
	pulls    *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// NewCardMetrics registers the card sync's metrics on reg (nil: unregistered).
func NewCardMetrics(reg prometheus.Registerer) *CardMetrics {
	m := &CardMetrics{
		signed: prometheus.NewCounter(prometheus.CounterOpts{Name: "theprotocol_federation_cards_signed_total",
			Help: "Own agent cards and tombstones signed for federation."}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "theprotocol_federation_cards_stored_total",
			Help: "Verified peer cards kept (new or newer)."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "theprotocol_federation_sync_bytes_total",
			Help: "Encoded bytes of card feed pages pulled from peers."}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "theprotocol_federation_sync_pulls_total",
			Help: "Card feed pulls by result."}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "theprotocol_federation_cards_rejected_total",
			Help: "Pulled cards and key attestations rejected, by reason (signature, unknown_key, bad_key, hops, malformed, bad_page)."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.signed, m.stored, m.bytes, m.pulls, m.rejected)
	}
	return m
}

// Rejected is the number of cards rejected for reason so far.
func (m *CardMetrics) Rejected(reason string) float64 {
	return counterValue(m.rejected.WithLabelValues(reason))
}

// Bytes is the encoded size of every page pulled so far.
func (m *CardMetrics) Bytes() float64 { return counterValue(m.bytes) }

// Pulls is the number of successful pulls so far.
func (m *CardMetrics) Pulls() float64 { return counterValue(m.pulls.WithLabelValues("ok")) }

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// jsonStrict decodes one JSON value with no unknown fields and nothing
// after it.
func jsonStrict(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
