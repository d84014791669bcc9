package ledgerapi

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Amounts travel as amount_units (a JSON integer of base units, 1 AVT =
// 10^8) and, for humans, amount (a decimal string, e.g. "12.5"). Requests
// give exactly one of the two; responses carry both.

// TransferRequest is the body of POST /transfers.
type TransferRequest struct {
	To          string `json:"to"`
	From        string `json:"from,omitempty"` // optional; must be the caller's own account
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
	Memo        string `json:"memo,omitempty"`
}

// TransferResponse is a committed transfer.
type TransferResponse struct {
	ID          uuid.UUID  `json:"id"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	AmountUnits int64      `json:"amount_units"`
	Amount      string     `json:"amount"`
	FeeUnits    int64      `json:"fee_units"`
	FeeBps      int64      `json:"fee_bps"`
	NetUnits    int64      `json:"net_units"`
	Memo        string     `json:"memo,omitempty"`
	HoldID      *uuid.UUID `json:"hold_id,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

func transferDTO(t ledgerstore.Transfer) TransferResponse {
	return TransferResponse{
		ID: t.ID, From: t.From, To: t.To, AmountUnits: t.AmountUnits, Amount: money.Format(t.AmountUnits),
		FeeUnits: t.FeeUnits, FeeBps: t.FeeBps, NetUnits: t.NetUnits, Memo: t.Memo, HoldID: t.HoldID, CreatedAt: t.CreatedAt,
	}
}

// TransferPage is a page of GET /transfers.
type TransferPage struct {
	Transfers  []TransferResponse `json:"transfers"`
	NextCursor string             `json:"next_cursor,omitempty"` // absent on the last page
}

// BucketResponse is one balance bucket.
type BucketResponse struct {
	Bucket         string `json:"bucket"`
	Units          int64  `json:"units"`
	HeldUnits      int64  `json:"held_units"`
	AvailableUnits int64  `json:"available_units"`
	Amount         string `json:"amount"`
	// Denomination is "native" (this frame's currency) or "wrapped"
	// (another frame's, held here as wrapped tokens: never part of this
	// frame's supply); OriginFrame names that frame.
	Denomination string `json:"denomination"`
	OriginFrame  string `json:"origin_frame,omitempty"`
}

// bucketDenomination splits a bucket name into its denomination.
func bucketDenomination(bucket string) (string, string) {
	if origin, ok := strings.CutPrefix(bucket, "wrapped:"); ok {
		return "wrapped", origin
	}
	return "native", ""
}

// BalanceResponse is GET /agents/{did}/balance.
type BalanceResponse struct {
	Account        string           `json:"account"`
	Kind           string           `json:"kind"`
	AvailableUnits int64            `json:"available_units"` // liquid − active holds
	Available      string           `json:"available"`
	Buckets        []BucketResponse `json:"buckets"`
}

// HoldRequest is the body of POST /holds.
type HoldRequest struct {
	To          string `json:"to"`
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
	Memo        string `json:"memo,omitempty"`
	// ExpiresInSeconds defaults to 3600; at most 7 days.
	ExpiresInSeconds *int64 `json:"expires_in_seconds,omitempty"`
}

// PostHoldRequest is the optional body of POST /holds/{id}/post; omit the
// amount (or the body) to post the full hold.
type PostHoldRequest struct {
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
}

// HoldResponse is a hold.
type HoldResponse struct {
	ID          uuid.UUID  `json:"id"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	AmountUnits int64      `json:"amount_units"`
	Amount      string     `json:"amount"`
	PostedUnits int64      `json:"posted_units"`
	Status      string     `json:"status"`
	Memo        string     `json:"memo,omitempty"`
	TransferID  *uuid.UUID `json:"transfer_id,omitempty"`
	ExpiresAt   time.Time  `json:"expires_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

func holdDTO(h ledgerstore.Hold) HoldResponse {
	return HoldResponse{
		ID: h.ID, From: h.From, To: h.To, AmountUnits: h.AmountUnits, Amount: money.Format(h.AmountUnits),
		PostedUnits: h.PostedUnits, Status: string(h.Status), Memo: h.Memo, TransferID: h.TransferID,
		ExpiresAt: h.ExpiresAt, CreatedAt: h.CreatedAt,
	}
}

// PostHoldResponse is the posted hold and the transfer it made.
type PostHoldResponse struct {
	Hold     HoldResponse     `json:"hold"`
	Transfer TransferResponse `json:"transfer"`
}

// MintRequest is the body of POST /admin/mint and POST /admin/burn.
type MintRequest struct {
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
	Reason      string `json:"reason"`
}

// GrantRequest is the body of POST /admin/grants.
type GrantRequest struct {
	To          string `json:"to"`
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
	Reason      string `json:"reason"`
}

// SupplyOperationResponse is a mint, burn or grant.
type SupplyOperationResponse struct {
	ID          uuid.UUID `json:"id"`
	Kind        string    `json:"kind"`
	Account     string    `json:"account"`
	AmountUnits int64     `json:"amount_units"`
	Amount      string    `json:"amount"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
	CreatedAt   time.Time `json:"created_at"`
}

func supplyDTO(o ledgerstore.SupplyOperation) SupplyOperationResponse {
	return SupplyOperationResponse{
		ID: o.ID, Kind: o.Kind, Account: o.Account, AmountUnits: o.AmountUnits, Amount: money.Format(o.AmountUnits),
		Reason: o.Reason, Actor: o.Actor, CreatedAt: o.CreatedAt,
	}
}

// amountOf resolves the amount_units / amount pair. required=false lets both
// be absent (returns 0).
func amountOf(units *int64, decimal string, required bool) (int64, error) {
	switch {
	case units != nil && decimal != "":
		return 0, apperr.New(apperr.Invalid, "give either amount_units or amount, not both")
	case units != nil:
		if *units <= 0 {
			return 0, apperr.New(apperr.Invalid, "amount_units must be a positive integer number of base units")
		}
		return *units, nil
	case decimal != "":
		u, err := money.Parse(decimal)
		if err != nil {
			return 0, apperr.New(apperr.Invalid, "amount %q: %s (use a decimal string like \"12.5\" with at most 8 decimals)", clip(decimal), err.Error())
		}
		if u <= 0 {
			return 0, apperr.New(apperr.Invalid, "amount must be positive")
		}
		return u, nil
	case required:
		return 0, apperr.New(apperr.Invalid, "amount_units (integer base units) or amount (decimal string) is required")
	}
	return 0, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
