package api

import (
	"bytes"
	"encoding/json"
	"errors"

	"io"
	"mime"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// DecodeJSON strictly decodes a JSON request body into dst: the content type
// must be JSON (or absent), unknown fields, trailing data, invalid UTF-8 and
// type mismatches are rejected with apperr.Invalid naming the problem, and a
// body over the server's limit yields apperr.TooLarge. It never panics on
// any input (fuzzed in bind_fuzz_test.go).
func DecodeJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/problem+json") {
			return apperr.New(apperr.Invalid, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apperr.New(apperr.TooLarge, "request body larger than %d bytes", tooLarge.Limit)
		}
		return apperr.Wrap(err, apperr.Invalid, "could not read request body")
	}
	return DecodeJSONBytes(body, dst)
}

// DecodeJSONBytes is DecodeJSON's decoder on a byte slice.
func DecodeJSONBytes(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.Invalid, "request body is empty; a JSON object is required")
	}
	if !utf8.Valid(body) {
		return apperr.New(apperr.Invalid, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return apperr.New(apperr.Invalid, "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.New(apperr.Invalid, "request body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return apperr.New(apperr.Invalid, "malformed JSON at byte %d", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, "malformed JSON: unexpected end of body")
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return apperr.New(apperr.Invalid, "field %q must be %s, got %s", typeErr.Field, typeErr.Type.String(), typeErr.Value)
		}
		return apperr.New(apperr.Invalid, "request body must be %s, got %s", typeErr.Type.String(), typeErr.Value)
	default:
		// json reports unknown fields as `json: unknown field "x"`.
		return apperr.New(apperr.Invalid, "invalid request body: %s", trimJSONPrefix(err.Error()))
	}
}

func trimJSONPrefix(s string) string {
	const p = "json: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// RequireFields returns apperr.Invalid naming the first empty field, for
// handlers that need more than the decoder's type checks.
func RequireFields(fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return apperr.New(apperr.Invalid, "field %q is required", f[0])
		}
	}
	return nil
}

// Field pairs a name with a value for RequireFields.
func Field(name, value string) [2]string { return [2]string{name, value} }
