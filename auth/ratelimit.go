package auth

import (
	"sync"
	"time"
)

// Limiter is an in-memory rate limiter per key (GCRA, the token bucket
// expressed as one timestamp per key): each key may make Burst requests at
// once and then one per Interval. It protects the authentication endpoints
// against brute force per credential and per client address.
//
// It is per process: N replicas allow N times the rate, which is acceptable
// against guessing 256-bit secrets and documented in registry/README.md. The
// number of tracked keys is capped at MaxKeys; when full, keys whose bucket
// has refilled are dropped first, then arbitrary ones (a flood of fresh keys
// can only reset buckets, never block other callers).
type Limiter struct {
	mu       sync.Mutex
	tat      map[string]time.Time // theoretical arrival time per key
	interval time.Duration
	burst    time.Duration // tolerance: interval × (burst − 1)
	maxKeys  int
	now      func() time.Time
}

// NewLimiter allows burst requests at once and then one per interval for
// each key, tracking at most maxKeys keys.
func NewLimiter(interval time.Duration, burst, maxKeys int, now func() time.Time) *Limiter {
	if interval <= 0 {
		interval = time.Second
	}
	if burst < 1 {
		burst = 1
	}
	if maxKeys < 1 {
		maxKeys = 100_000
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{tat: make(map[string]time.Time), interval: interval, burst: interval * time.Duration(burst-1), maxKeys: maxKeys, now: now}
}

// Allow consumes one request for key. When the key is over its rate it
// returns false and how long until the next request would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	if wait := tat.Sub(now) - l.burst; wait > 0 {
		return false, wait
	}
	if !ok && len(l.tat) >= l.maxKeys {
		l.evict(now)
	}
	l.tat[key] = tat.Add(l.interval)
	return true, 0
}

// evict drops refilled keys, or an arbitrary tenth of the keys when none
// have refilled. Called with l.mu held.
func (l *Limiter) evict(now time.Time) {
	for k, t := range l.tat {
		if !t.After(now) {
			delete(l.tat, k)
		}
	}
	if len(l.tat) < l.maxKeys {
		return
	}
	drop := max(len(l.tat)-l.maxKeys+1, l.maxKeys/10)
	for k := range l.tat {
		if drop == 0 {
			break
		}
		delete(l.tat, k)
		drop--
	}
}

// Len is the number of tracked keys (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}
