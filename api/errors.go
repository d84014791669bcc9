package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// statusByCode is the one place error codes become HTTP statuses.
var statusByCode = map[apperr.Code]int{
	apperr.Invalid:            http.StatusBadRequest,
	apperr.NotFound:           http.StatusNotFound,
	apperr.Conflict:           http.StatusConflict,
	apperr.IdempotencyReuse:   http.StatusConflict,
	apperr.Unauthenticated:    http.StatusUnauthorized,
	apperr.Forbidden:          http.StatusForbidden,
	apperr.InsufficientFunds:  http.StatusUnprocessableEntity,
	apperr.FailedPrecondition: http.StatusUnprocessableEntity,
	apperr.TooLarge:           http.StatusRequestEntityTooLarge,
	apperr.RateLimited:        http.StatusTooManyRequests,
	apperr.Unavailable:        http.StatusServiceUnavailable,
	apperr.Internal:           http.StatusInternalServerError,

	apperr.PeerNotAdmitted:     http.StatusForbidden,
	apperr.ExposureCapExceeded: http.StatusUnprocessableEntity,
	apperr.AmbiguousHome:       http.StatusConflict,
}

// StatusOf maps an error code to its HTTP status (500 for unknown codes).
func StatusOf(code apperr.Code) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries the code and a caller-safe message.
type ErrorDetail struct {
	Code    apperr.Code `json:"code"`
	Message string      `json:"message"`
}

// WriteError writes err as {"error":{"code","message"}} with the mapped
// status and aborts the chain. Internal errors are logged (with the request
// ID) by the access-log middleware and shown to the caller only as
// "internal error".
func WriteError(c *gin.Context, err error) {
	code := apperr.CodeOf(err)
	_ = c.Error(err) // recorded for the access log and the error counter
	c.AbortWithStatusJSON(StatusOf(code), ErrorBody{Error: ErrorDetail{Code: code, Message: apperr.MessageOf(err)}})
}
