package eventstoreapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// Stream serves GET /events/stream: the frame's event log as server-sent
// events, newest first arriving last. It polls the log by segment (the
// append order), so it costs one indexed query per interval per viewer;
// the number of viewers, the events sent per poll and a stream's lifetime
// are all capped so a public page cannot load the EventStore.
type Stream struct {
	Pool *pgxpool.Pool
	// Zero values take the defaults below.
	Poll       time.Duration // between reads of the log (500ms)
	Heartbeat  time.Duration // comment line when idle, keeps proxies open (15s)
	Lifetime   time.Duration // then the stream ends; EventSource reconnects with Last-Event-ID (5m)
	MaxStreams int32         // concurrent streams (32)
	Backlog    int           // events sent first when no cursor is given (50)
	MaxBatch   int           // events sent per poll; older ones are reported as a gap (256)

	open atomic.Int32
}

const streamSegmentsPerPoll = 16

// Mount registers the route under v1.
func (s *Stream) Mount(v1 *gin.RouterGroup) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.Poll, 500*time.Millisecond)
	def(&s.Heartbeat, 15*time.Second)
	def(&s.Lifetime, 5*time.Minute)
	if s.MaxStreams <= 0 {
		s.MaxStreams = 32
	}
	if s.Backlog <= 0 {
		s.Backlog = 50
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = 256
	}
	v1.GET("/events/stream", s.serve)
}

// parseCursor reads "segment.pos" (the id of the last event seen).
func parseCursor(v string) (seg int64, pos int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found || len(v) > 40 {
		return 0, 0, false
	}
	seg, err1 := strconv.ParseInt(a, 10, 64)
	p, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || seg < 0 || p < 0 {
		return 0, 0, false
	}
	return seg, p, true
}

func (s *Stream) serve(c *gin.Context) {
	ctx := c.Request.Context()
	cursor := c.GetHeader("Last-Event-ID")
	if cursor == "" {
		cursor = c.Query("after")
	}
	var after int64
	skipThrough := -1 // positions of segment `after` already seen
	backlog := cursor == ""
	if !backlog {
		seg, pos, ok := parseCursor(cursor)
		if !ok {
			api.WriteError(c, apperr.New(apperr.Invalid, "cursor must be segment.pos (the id of the last event seen)"))
			return
		}
		// The cursor's segment is read again; its positions up to pos are dropped.
		after, skipThrough = seg-1, pos
		if after < 0 {
			after = 0
		}
	}
	if s.open.Add(1) > s.MaxStreams {
		s.open.Add(-1)
		api.WriteError(c, apperr.New(apperr.RateLimited, "too many event streams open; retry later"))
		return
	}
	defer s.open.Add(-1)
	if backlog {
		last, err := ingest.LastSegment(ctx, s.Pool)
		if err != nil {
			api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "event log unavailable"))
			return
		}
		// A few segments back: enough for the backlog in all but bulk loads.
		after = max(0, last-8)
	}
	w := c.Writer
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(s string) bool {
		// The server's write timeout is for ordinary requests; a stream
		// extends it per write instead.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.WriteString(s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n\n") {
		return
	}
	end := time.NewTimer(s.Lifetime)
	defer end.Stop()
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	idleSince := time.Now()
	first := true
	for {
		evs, last, err := ingest.Tail(ctx, s.Pool, after, streamSegmentsPerPoll)
		if err != nil {
			write("event: error\ndata: \"event log unavailable\"\n\n")
			return
		}
		if skipThrough >= 0 {
			kept := evs[:0]
			for _, e := range evs {
				if e.Segment == after+1 && e.Pos <= skipThrough {
					continue
				}
				kept = append(kept, e)
			}
			evs, skipThrough = kept, -1
		}
		after = last
		limit := s.MaxBatch
		if first && backlog {
			limit = s.Backlog
		}
		first = false
		if len(evs) > limit {
			gap := len(evs) - limit
			evs = evs[gap:]
			if !write(fmt.Sprintf("event: gap\ndata: %d\n\n", gap)) {
				return
			}
		}
		for _, e := range evs {
			raw, err := json.Marshal(e)
			if err != nil {
				return
			}
			if !write(fmt.Sprintf("id: %d.%d\nevent: event\ndata: %s\n\n", e.Segment, e.Pos, raw)) {
				return
			}
		}
		if len(evs) > 0 {
			idleSince = time.Now()
		} else if time.Since(idleSince) >= s.Heartbeat {
			if !write(": heartbeat\n\n") {
				return
			}
			idleSince = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}
