package registry

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// AgentCard is an agent's public, A2A-style self-description: who it is,
// where to reach it, what it can do and what it charges. It is stored as
// published (after validation) and served back verbatim.
type AgentCard struct {
	Name             string        `json:"name"`
	Description      string        `json:"description"`
	URL              string        `json:"url"` // the agent's endpoint
	Version          string        `json:"version,omitempty"`
	DocumentationURL string        `json:"documentation_url,omitempty"`
	Skills           []Skill       `json:"skills"`
	PaymentTerms     *PaymentTerms `json:"payment_terms,omitempty"`
}

// Skill is one capability; ID is what `GET /agents?skill=` matches.
type Skill struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// PaymentTerms say what a call costs, in integer base units of Currency
// (1 AVT = 10^8 units); never floats.
type PaymentTerms struct {
	Currency          string `json:"currency"`
	PricePerCallUnits int64  `json:"price_per_call_units"`
	Note              string `json:"note,omitempty"`
}

var (
	skillIDPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	currencyPattern = regexp.MustCompile(`^[A-Z][A-Z0-9]{1,9}$`)
)

// ValidSkillID reports whether s is a well-formed skill ID (lowercase
// letters, digits, '.', '_', '-'; at most MaxSkillIDBytes).
func ValidSkillID(s string) bool {
	return len(s) > 0 && len(s) <= MaxSkillIDBytes && skillIDPattern.MatchString(s)
}

// Validate checks every field against the limits in limits.go and returns
// apperr.Invalid naming the first offending field. It never panics.
func (c AgentCard) Validate() error {
	if err := text("name", c.Name, 1, MaxNameBytes, false); err != nil {
		return err
	}
	if err := text("description", c.Description, 0, MaxDescriptionBytes, true); err != nil {
		return err
	}
	if err := httpURL("url", c.URL, true); err != nil {
		return err
	}
	if err := text("version", c.Version, 0, MaxVersionBytes, false); err != nil {
		return err
	}
	if err := httpURL("documentation_url", c.DocumentationURL, false); err != nil {
		return err
	}
	if len(c.Skills) > MaxSkills {
		return apperr.New(apperr.Invalid, "skills: at most %d allowed", MaxSkills)
	}
	seen := make(map[string]bool, len(c.Skills))
	for i, s := range c.Skills {
		field := func(f string) string { return "skills[" + itoa(i) + "]." + f }
		if !ValidSkillID(s.ID) {
			return apperr.New(apperr.Invalid, "%s must be 1-%d characters of [a-z0-9._-], starting with a letter or digit", field("id"), MaxSkillIDBytes)
		}
		if seen[s.ID] {
			return apperr.New(apperr.Invalid, "%s %q is duplicated", field("id"), s.ID)
		}
		seen[s.ID] = true
		if err := text(field("name"), s.Name, 1, MaxSkillNameBytes, false); err != nil {
			return err
		}
		if err := text(field("description"), s.Description, 0, MaxSkillDescBytes, true); err != nil {
			return err
		}
		if len(s.Tags) > MaxTagsPerSkill {
			return apperr.New(apperr.Invalid, "%s: at most %d tags", field("tags"), MaxTagsPerSkill)
		}
		for j, tag := range s.Tags {
			if err := text(field("tags["+itoa(j)+"]"), tag, 1, MaxTagBytes, false); err != nil {
				return err
			}
		}
	}
	if p := c.PaymentTerms; p != nil {
		if !currencyPattern.MatchString(p.Currency) {
			return apperr.New(apperr.Invalid, "payment_terms.currency must be 2-10 uppercase letters or digits, e.g. AVT")
		}
		if p.PricePerCallUnits < 0 {
			return apperr.New(apperr.Invalid, "payment_terms.price_per_call_units must not be negative")
		}
		if err := text("payment_terms.note", p.Note, 0, MaxPaymentNoteBytes, true); err != nil {
			return err
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return apperr.Wrap(err, apperr.Invalid, "card cannot be encoded")
	}
	if len(raw) > MaxCardBytes {
		return apperr.New(apperr.Invalid, "card is larger than %d bytes encoded", MaxCardBytes)
	}
	return nil
}

// SkillIDs lists the card's skill IDs in card order.
func (c AgentCard) SkillIDs() []string {
	ids := make([]string, 0, len(c.Skills))
	for _, s := range c.Skills {
		ids = append(ids, s.ID)
	}
	return ids
}

// text checks a string field: valid UTF-8, length in bytes within
// [minLen, maxLen], no control characters (newline and tab allowed only when
// multiline), and not only whitespace when required.
func text(field, s string, minLen, maxLen int, multiline bool) error {
	if len(s) > maxLen {
		return apperr.New(apperr.Invalid, "%s must be at most %d bytes", field, maxLen)
	}
	if len(s) < minLen || (minLen > 0 && strings.TrimSpace(s) == "") {
		return apperr.New(apperr.Invalid, "field %q is required", field)
	}
	if !utf8.ValidString(s) {
		return apperr.New(apperr.Invalid, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r == utf8.RuneError {
			return apperr.New(apperr.Invalid, "%s contains an invalid character", field)
		}
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return apperr.New(apperr.Invalid, "%s must not contain control characters", field)
		}
	}
	return nil
}

// httpURL checks an absolute http(s) URL with a host, no user info and no
// fragment.
func httpURL(field, s string, required bool) error {
	if s == "" {
		if required {
			return apperr.New(apperr.Invalid, "field %q is required", field)
		}
		return nil
	}
	if len(s) > MaxURLBytes {
		return apperr.New(apperr.Invalid, "%s must be at most %d bytes", field, MaxURLBytes)
	}
	if err := text(field, s, 1, MaxURLBytes, false); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil {
		return apperr.New(apperr.Invalid, "%s is not a valid URL", field)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return apperr.New(apperr.Invalid, "%s must use http or https", field)
	}
	if u.Host == "" || u.Hostname() == "" {
		return apperr.New(apperr.Invalid, "%s must have a host", field)
	}
	if u.User != nil {
		return apperr.New(apperr.Invalid, "%s must not contain credentials", field)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return apperr.New(apperr.Invalid, "%s must not contain a fragment", field)
	}
	if strings.ContainsAny(s, " \\") {
		return apperr.New(apperr.Invalid, "%s must not contain spaces or backslashes", field)
	}
	return nil
}

// ValidateText exposes the string-field check for other inputs (developer
// and organisation names).
func ValidateText(field, s string, minLen, maxLen int) error {
	return text(field, s, minLen, maxLen, false)
}

// ValidateEmail does a deliberately small check: one '@' with text on both
// sides, no spaces or control characters, at most MaxEmailBytes. The
// registry does not send mail; the address is a contact and a unique key.
func ValidateEmail(s string) error {
	if err := text("email", s, 3, MaxEmailBytes, false); err != nil {
		return err
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 || strings.ContainsAny(s, " \t") {
		return apperr.New(apperr.Invalid, "email must look like name@example.org")
	}
	return nil
}

func itoa(i int) string {
	// small, allocation-light; i is a bounded index
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
