package identity

import (
	"crypto/tls"
	"encoding/binary"
	"sync"
	"time"
)

// maxTrackedChains bounds the server's map of live session chains.
const maxTrackedChains = 4096

// sessionPolicy makes a server decline resumption of session chains older
// than maxAge, so that the next connection does a full handshake with both
// sides' current SVIDs.
//
// Why: under SPIFFE verification crypto/tls does not re-check certificates
// on resumption, and our resumption check (VerifyConnection) refuses an
// expired one rather than falling back. A resumed connection yields new
// tickets carrying the certificates of the original full handshake, so
// without a bound a chain of resumptions could outlive both SVIDs and fail.
//
// Each ticket carries (in SessionState.Extra) the time of the full handshake
// that started its chain. Tickets minted on resumed connections inherit it
// through the client certificate's serial (the conservative minimum over
// recent resumptions), so a chain lives at most about 2*maxAge.
type sessionPolicy struct {
	cfg    *tls.Config // whose session ticket keys encrypt the tickets
	maxAge time.Duration

	mu    sync.Mutex
	chain map[string]time.Time // client leaf serial -> chain start of a recent resumption
}

func installSessionPolicy(cfg *tls.Config, maxAge time.Duration) {
	p := &sessionPolicy{cfg: cfg, maxAge: maxAge, chain: map[string]time.Time{}}
	cfg.WrapSession = p.wrap
	cfg.UnwrapSession = p.unwrap
}

func clientSerial(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].SerialNumber.String()
}

func (p *sessionPolicy) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	born := time.Now()
	if cs.DidResume {
		p.mu.Lock()
		if b, ok := p.chain[clientSerial(cs)]; ok {
			born = b
		} else {
			born = time.Time{} // unknown chain: mint a ticket that will be declined
		}
		p.mu.Unlock()
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(born.UnixNano()))
	ss.Extra = [][]byte{b[:], []byte(clientSerial(cs))}
	return p.cfg.EncryptTicket(cs, ss)
}

func (p *sessionPolicy) unwrap(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := p.cfg.DecryptTicket(identity, cs)
	if err != nil || ss == nil {
		return nil, err
	}
	if len(ss.Extra) != 2 || len(ss.Extra[0]) != 8 {
		return nil, nil // not ours: full handshake
	}
	born := time.Unix(0, int64(binary.BigEndian.Uint64(ss.Extra[0])))
	now := time.Now()
	if now.Sub(born) > p.maxAge {
		return nil, nil // chain too old: full handshake with fresh SVIDs
	}
	// Remember the chain start under the client certificate's serial (stored
	// in the ticket, as the session's certificates are not exported) so the
	// ticket minted on this resumed connection inherits it in wrap.
	serial := string(ss.Extra[1])
	if serial != "" {
		p.mu.Lock()
		if cur, ok := p.chain[serial]; !ok || now.Sub(cur) > p.maxAge || born.Before(cur) {
			if len(p.chain) >= maxTrackedChains {
				for k, b := range p.chain {
					if now.Sub(b) > p.maxAge {
						delete(p.chain, k)
					}
				}
			}
			if len(p.chain) < maxTrackedChains {
				p.chain[serial] = born
			}
		}
		p.mu.Unlock()
	}
	return ss, nil
}
