// Package apperr defines the one error type every layer returns for
// expected failures. Each error carries a machine-readable Code; the API layer
// maps codes to HTTP status in exactly one place (api/errors.go), so handlers
// never pick status codes themselves.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error for callers and for the HTTP mapping.
type Code string

// The codes are part of the public API (they appear in error bodies); add new
// ones rather than changing the meaning of existing ones.
const (
	Invalid            Code = "invalid_argument"       // malformed or out-of-range input
	NotFound           Code = "not_found"              // the named thing does not exist
	Conflict           Code = "conflict"               // state conflict, e.g. duplicate or wrong state
	IdempotencyReuse   Code = "idempotency_key_reused" // same key, different request
	Unauthenticated    Code = "unauthenticated"        // no or bad credentials
	Forbidden          Code = "forbidden"              // authenticated but not allowed
	InsufficientFunds  Code = "insufficient_funds"     // available balance too low
	FailedPrecondition Code = "failed_precondition"    // operation not allowed in the current state
	TooLarge           Code = "payload_too_large"      // request body over the limit
	RateLimited        Code = "rate_limited"           // caller over a limit
	Unavailable        Code = "unavailable"            // a dependency is down; retry later
	Internal           Code = "internal"               // a bug or unexpected failure; logged
)

// Codes of the limits put on peer registries.
const (
	PeerNotAdmitted     Code = "peer_not_admitted"       // the caller is no TEG of an active peer in our trust domain
	ExposureCapExceeded Code = "exposure_cap_exceeded"   // crediting through a peer's transit account would pass its cap
	AmbiguousHome       Code = "ambiguous_home_registry" // more than one registry claims the account
)

// Error is an expected failure with a code and a message safe to show callers.
// Cause, when set, is for logs only and never reaches a response body.
type Error struct {
	Code    Code
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an *Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps cause for logging.
func Wrap(cause error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal for
// any other non-nil error, or "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the caller-safe message: the *Error's message, or a generic
// text for unexpected errors so internals never leak into responses.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// WrapUncoded returns err unchanged when it carries a code (or is nil), and
// otherwise wraps it with code: for failures of a dependency whose own
// codes are meant for the caller (a short wallet) while anything else (the
// database down) gets one meaning, typically Unavailable.
func WrapUncoded(err error, code Code, format string, args ...any) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return Wrap(err, code, format, args...)
}
