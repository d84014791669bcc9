// Package openapi builds the API's OpenAPI 3.1 document from a table of
// operations, one file per route group (ops_*.go), each registering its
// rows with Register at init. Schemas come from the handlers' own Go DTO
// types by reflection, so a changed DTO changes the document. A route
// without a row (or a row without a route) fails the node's
// route-coverage test, which names it: adding a route means adding a row.
package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Auth is how an operation authenticates.
type Auth string

// Authentication kinds.
const (
	AuthNone      Auth = ""
	AuthBearer    Auth = "bearer"    // a registry access token (POST /auth/token)
	AuthBootstrap Auth = "bootstrap" // a developer's bootstrap token (POST /bootstrap-tokens)
)

// Idempotency says whether an operation takes an Idempotency-Key.
type Idempotency int

// Idempotency kinds.
const (
	IdemNone     Idempotency = iota
	IdemRequired             // every call needs the header
	IdemOptional             // honoured when present
)

// Operation is one route's row.
type Operation struct {
	Method  string // http.MethodGet, ...
	Path    string // OpenAPI form: /api/v1/holds/{id}
	ID      string // operationId, unique
	Summary string
	Tag     string
	Auth    Auth
	Idem    Idempotency
	// Query parameters (name → description), all optional strings.
	Query map[string]string
	// Request is a value of the JSON body's Go type (nil: no body).
	Request any
	// Status is the success status (0: 200); Response a value of the
	// success body's Go type (nil: a JSON object not described further).
	Status   int
	Response any
	// Text marks a text/plain response (metrics).
	Text bool
}

var (
	mu  sync.Mutex
	ops = map[string]Operation{} // by method + path
	ids = map[string]bool{}
)

// Register adds a route group's rows; a duplicate route or operationId is a
// programming error and panics at init.
func Register(rows ...Operation) {
	mu.Lock()
	defer mu.Unlock()
	for _, o := range rows {
		k := o.Method + " " + o.Path
		if _, dup := ops[k]; dup || ids[o.ID] || o.ID == "" {
			panic(fmt.Sprintf("openapi: duplicate or unnamed operation %s (%s)", k, o.ID))
		}
		ops[k] = o
		ids[o.ID] = true
	}
}

// Operations returns every row, sorted by path then method.
func Operations() []Operation {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Operation, 0, len(ops))
	for _, o := range ops {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_][A-Za-z0-9_]*)`)

// FromGinPath turns /holds/:id into /holds/{id}.
func FromGinPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

var pathParam = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// errorStatuses are the error responses every operation may answer, with
// the body api.WriteError writes.
var errorStatuses = []int{400, 401, 403, 404, 409, 413, 422, 429, 503}

// Document returns the OpenAPI 3.1 document as JSON.
func Document(version string) ([]byte, error) {
	g := newGen()
	errRef := g.ref(api.ErrorBody{})
	codes := []string{}
	for _, c := range []apperr.Code{apperr.Invalid, apperr.NotFound, apperr.Conflict, apperr.IdempotencyReuse, apperr.Unauthenticated,
		apperr.Forbidden, apperr.InsufficientFunds, apperr.FailedPrecondition, apperr.TooLarge, apperr.RateLimited, apperr.Unavailable,
		apperr.Internal, apperr.PeerNotAdmitted, apperr.ExposureCapExceeded, apperr.AmbiguousHome} {
		codes = append(codes, string(c))
	}
	paths := map[string]map[string]any{}
	for _, o := range Operations() {
		op := map[string]any{"operationId": o.ID, "summary": o.Summary, "tags": []string{o.Tag}}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(o.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		qs := make([]string, 0, len(o.Query))
		for q := range o.Query {
			qs = append(qs, q)
		}
		sort.Strings(qs)
		for _, q := range qs {
			params = append(params, map[string]any{"name": q, "in": "query", "description": o.Query[q], "schema": map[string]any{"type": "string"}})
		}
		if o.Idem != IdemNone {
			params = append(params, map[string]any{"$ref": "#/components/parameters/IdempotencyKey"})
			if o.Idem == IdemRequired {
				params[len(params)-1] = map[string]any{"$ref": "#/components/parameters/IdempotencyKeyRequired"}
			}
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		switch o.Auth {
		case AuthBearer:
			op["security"] = []any{map[string]any{"bearerAuth": []string{}}}
		case AuthBootstrap:
			op["security"] = []any{map[string]any{"bootstrapToken": []string{}}}
		default:
			op["security"] = []any{}
		}
		if o.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(o.Request)},
			}}
		}
		status := o.Status
		if status == 0 {
			status = http.StatusOK
		}
		var body map[string]any
		switch {
		case o.Text:
			body = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case o.Response != nil:
			body = map[string]any{"application/json": map[string]any{"schema": g.schema(o.Response)}}
		default:
			body = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
		}
		responses := map[string]any{fmt.Sprint(status): map[string]any{"description": http.StatusText(status), "content": body}}
		for _, s := range errorStatuses {
			responses[fmt.Sprint(s)] = map[string]any{"$ref": "#/components/responses/Error"}
		}
		op["responses"] = responses
		if paths[o.Path] == nil {
			paths[o.Path] = map[string]any{}
		}
		paths[o.Path][strings.ToLower(o.Method)] = op
	}
	g.schemas["ErrorDetail"].(map[string]any)["properties"].(map[string]any)["code"] = map[string]any{"type": "string", "enum": codes}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "TheProtocol API",
			"version":     version,
			"description": "Registry, ledger, EventStore and paid-call routes of one node. Amounts are integer base units (1 AVT = 10^8) or decimal strings; errors are {\"error\":{\"code\",\"message\"}}.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.schemas,
			"securitySchemes": map[string]any{
				"bearerAuth":     map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An access token from POST /api/v1/auth/token."},
				"bootstrapToken": map[string]any{"type": "http", "scheme": "bearer", "description": "A developer's one-time bootstrap token from POST /api/v1/bootstrap-tokens."},
			},
			"parameters": map[string]any{
				"IdempotencyKey": map[string]any{"name": "Idempotency-Key", "in": "header", "required": false,
					"description": "Same key and body: the stored response (Idempotent-Replayed: true); same key, another body: 409.",
					"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": 255}},
				"IdempotencyKeyRequired": map[string]any{"name": "Idempotency-Key", "in": "header", "required": true,
					"description": "Required. Same key and body: the stored response (Idempotent-Replayed: true); same key, another body: 409.",
					"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": 255}},
			},
			"responses": map[string]any{
				"Error": map[string]any{"description": "An error with a machine-readable code.",
					"content": map[string]any{"application/json": map[string]any{"schema": errRef}}},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// CommittedVersion is info.version of the committed copy of the document
// (api/openapi/openapi.json): the API's major version, not the build's, so
// the file changes only when an operation or a schema does.
const CommittedVersion = "v1"

// Committed returns the document as committed to the repository (the
// generated SDK client's input): Document at CommittedVersion, ending in a
// newline.
func Committed() ([]byte, error) {
	doc, err := Document(CommittedVersion)
	if err != nil {
		return nil, err
	}
	return append(doc, '\n'), nil
}
