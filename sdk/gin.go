package sdk

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Gin is PaymentVerifier as Gin middleware: the handlers after it run
// only for a verified token, into a buffer, and their answer is sent once
// the token is settled (released instead when they answer ≥ 400).
func (v *PaymentVerifier) Gin() gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := c.GetHeader(PaymentHeader)
		if tok == "" {
			v.refuse(c.Writer, "payment_required", fmt.Sprintf("this call costs %d base units of %s; pay with a payment token for %s", v.PriceUnits, v.Currency, v.Payee))
			c.Abort()
			return
		}
		ctx := c.Request.Context()
		if code, err := v.Accept(ctx, tok); err != nil {
			v.refuse(c.Writer, code, err.Error())
			c.Abort()
			return
		}
		rec := &ginBuffer{ResponseWriter: c.Writer, status: http.StatusOK}
		c.Writer = rec
		c.Next()
		c.Writer = rec.ResponseWriter
		if err := v.Finish(ctx, tok, rec.status < 400); err != nil {
			v.refuse(c.Writer, "payment_not_settled", err.Error())
			return
		}
		c.Writer.WriteHeader(rec.status)
		_, _ = c.Writer.Write(rec.body.Bytes())
	}
}

// ginBuffer holds a handler's answer until the payment is settled
// (headers go to the real writer's map at once; they are sent with the
// status later).
type ginBuffer struct {
	gin.ResponseWriter
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *ginBuffer) WriteHeader(s int) {
	if !b.wrote {
		b.status = s
	}
}
func (b *ginBuffer) WriteHeaderNow()                   { b.wrote = true }
func (b *ginBuffer) Write(p []byte) (int, error)       { b.wrote = true; return b.body.Write(p) }
func (b *ginBuffer) WriteString(s string) (int, error) { b.wrote = true; return b.body.WriteString(s) }
func (b *ginBuffer) Status() int                       { return b.status }
func (b *ginBuffer) Size() int                         { return b.body.Len() }
func (b *ginBuffer) Written() bool                     { return b.wrote }
