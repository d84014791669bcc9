package fedgov

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// CallerFunc names the federated registry behind a request on the mTLS
// listener (from its verified SPIFFE ID); an error refuses the request.
type CallerFunc func(r *http.Request) (string, error)

// Register mounts the peer side on the mTLS listener's mux:
//
//	POST /internal/v1/governance/federation/proposals            announce
//	POST /internal/v1/governance/federation/proposals/{id}/tally  signed local tally
//
// Only federated registries (caller) are answered; an announcement must be
// the caller's own proposal, and a tally is given to the proposal's
// origin only.
func (s *Service) Register(mux *http.ServeMux, caller CallerFunc) {
	mux.HandleFunc("POST "+AnnouncePath, func(w http.ResponseWriter, r *http.Request) {
		reg, err := caller(r)
		if err != nil {
			writeErr(w, apperr.Wrap(err, apperr.Forbidden, "not a federated registry"))
			return
		}
		var a Announcement
		if err := decode(r, &a); err != nil {
			writeErr(w, err)
			return
		}
		j, err := s.Join(r.Context(), reg, a)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, j)
	})
	mux.HandleFunc("POST "+AnnouncePath+"/{id}"+tallySuffix, func(w http.ResponseWriter, r *http.Request) {
		reg, err := caller(r)
		if err != nil {
			writeErr(w, apperr.Wrap(err, apperr.Forbidden, "not a federated registry"))
			return
		}
		id, err := ParseTallyPath(r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		t, err := s.LocalTally(r.Context(), reg, id)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, t)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	status := map[apperr.Code]int{
		apperr.Invalid: 400, apperr.Unauthenticated: 401, apperr.Forbidden: 403, apperr.NotFound: 404,
		apperr.Conflict: 409, apperr.FailedPrecondition: 422, apperr.Unavailable: 503,
	}[code]
	if status == 0 {
		status, code = 500, apperr.Internal
	}
	msg := apperr.MessageOf(err)
	if status == 500 {
		msg = "internal error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}

func decode(r *http.Request, dst any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return apperr.Wrap(err, apperr.Invalid, "read body")
	}
	if len(body) > maxBody {
		return apperr.New(apperr.Invalid, "body larger than %d bytes", maxBody)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apperr.New(apperr.Invalid, "malformed body: %v", err)
	}
	return nil
}
