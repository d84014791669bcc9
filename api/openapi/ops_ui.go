package openapi

import (
	"net/http"
)

func init() {
	const v1 = "/api/v1"
	Register(
		Operation{Method: http.MethodGet, Path: "/ui", ID: "monitorPage", Tag: "ops", Text: true,
			Summary: "The live frame monitor (HTML): supply audit, reconciliation, events, last paid call"},
		Operation{Method: http.MethodGet, Path: "/ui/app.js", ID: "monitorScript", Tag: "ops", Text: true,
			Summary: "The monitor page's script"},
		Operation{Method: http.MethodGet, Path: v1 + "/events/stream", ID: "eventStream", Tag: "eventstore", Text: true,
			Query:   map[string]string{"after": "resume after this event id (segment.pos); the Last-Event-ID header takes precedence"},
			Summary: "The frame's event log as server-sent events (event: event, data: a tailed event; event: gap; heartbeats)"},
	)
}
