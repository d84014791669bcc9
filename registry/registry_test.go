package registry_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

func TestDID(t *testing.T) {
	t.Parallel()
	did := registry.NewDID()
	id, err := registry.ParseDID(did)
	require.NoError(t, err)
	require.Equal(t, did, registry.DIDFromUUID(id))
	for _, bad := range []string{
		"", "did:theprotocol:", "did:other:" + uuid.NewString(), strings.ToUpper(did), "did:theprotocol:" + strings.ReplaceAll(uuid.NewString(), "-", ""),
		"did:theprotocol:{" + uuid.NewString() + "}", "did:theprotocol:00000000-0000-0000-0000-000000000000", did + " ", "did:theprotocol:urn:uuid:" + uuid.NewString()[:27],
	} {
		_, err := registry.ParseDID(bad)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "%q", bad)
	}
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	did := registry.NewDID()
	id := uuid.New()
	for sub, kind := range map[string]string{did: "agent", registry.DeveloperSubject(id): "developer", registry.AdminSubject(id): "admin"} {
		k, _, err := registry.ParseSubject(sub)
		require.NoError(t, err)
		require.Equal(t, kind, k)
	}
	for _, bad := range []string{"", "dev:", "dev:nope", "admin:" + strings.ToUpper(id.String()), "user:" + id.String()} {
		_, _, err := registry.ParseSubject(bad)
		require.Error(t, err, bad)
	}
}

func validCard() registry.AgentCard {
	return registry.AgentCard{
		Name: "Translator", Description: "Translates\ttext.\nFast.", URL: "https://agent.example.org/a2a",
		Skills:       []registry.Skill{{ID: "translate", Name: "Translate", Tags: []string{"nlp"}}, {ID: "sum.v2", Name: "Summarise"}},
		PaymentTerms: &registry.PaymentTerms{Currency: "AVT", PricePerCallUnits: 1_000_000},
	}
}

func TestCardValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, validCard().Validate())
	require.Equal(t, []string{"translate", "sum.v2"}, validCard().SkillIDs())
	many := make([]registry.Skill, registry.MaxSkills+1)
	for i := range many {
		many[i] = registry.Skill{ID: "s" + strings.Repeat("x", i), Name: "n"}
	}
	cases := map[string]struct {
		mod func(*registry.AgentCard)
		msg string
	}{
		"no name":           {func(c *registry.AgentCard) { c.Name = "" }, `"name" is required`},
		"blank name":        {func(c *registry.AgentCard) { c.Name = "   " }, `"name" is required`},
		"long name":         {func(c *registry.AgentCard) { c.Name = strings.Repeat("n", registry.MaxNameBytes+1) }, "at most"},
		"control in name":   {func(c *registry.AgentCard) { c.Name = "a\x1bb" }, "control"},
		"newline in name":   {func(c *registry.AgentCard) { c.Name = "a\nb" }, "control"},
		"bidi separator":    {func(c *registry.AgentCard) { c.Name = "a\u2028b" }, "control"},
		"invalid utf8":      {func(c *registry.AgentCard) { c.Description = "\xff" }, "UTF-8"},
		"long description":  {func(c *registry.AgentCard) { c.Description = strings.Repeat("d", registry.MaxDescriptionBytes+1) }, "at most"},
		"no url":            {func(c *registry.AgentCard) { c.URL = "" }, `"url" is required`},
		"ftp url":           {func(c *registry.AgentCard) { c.URL = "ftp://x.org" }, "http or https"},
		"javascript url":    {func(c *registry.AgentCard) { c.URL = "javascript:alert(1)" }, "http or https"},
		"relative url":      {func(c *registry.AgentCard) { c.URL = "/a2a" }, "http or https"},
		"no host":           {func(c *registry.AgentCard) { c.URL = "https:///x" }, "host"},
		"userinfo":          {func(c *registry.AgentCard) { c.URL = "https://u:p@x.org" }, "credentials"},
		"fragment":          {func(c *registry.AgentCard) { c.URL = "https://x.org/#f" }, "fragment"},
		"long url":          {func(c *registry.AgentCard) { c.URL = "https://x.org/" + strings.Repeat("a", registry.MaxURLBytes) }, "at most"},
		"bad doc url":       {func(c *registry.AgentCard) { c.DocumentationURL = "file:///etc/passwd" }, "http or https"},
		"too many skills":   {func(c *registry.AgentCard) { c.Skills = many }, "at most"},
		"bad skill id":      {func(c *registry.AgentCard) { c.Skills[0].ID = "Translate" }, "skills[0].id"},
		"dup skill":         {func(c *registry.AgentCard) { c.Skills[1].ID = "translate" }, "duplicated"},
		"skill no name":     {func(c *registry.AgentCard) { c.Skills[1].Name = "" }, "skills[1].name"},
		"too many tags":     {func(c *registry.AgentCard) { c.Skills[0].Tags = make([]string, 11) }, "tags"},
		"empty tag":         {func(c *registry.AgentCard) { c.Skills[0].Tags = []string{""} }, "tags[0]"},
		"bad currency":      {func(c *registry.AgentCard) { c.PaymentTerms.Currency = "avt" }, "currency"},
		"negative price":    {func(c *registry.AgentCard) { c.PaymentTerms.PricePerCallUnits = -1 }, "negative"},
		"long version":      {func(c *registry.AgentCard) { c.Version = strings.Repeat("1", 33) }, "version"},
		"long payment note": {func(c *registry.AgentCard) { c.PaymentTerms.Note = strings.Repeat("x", 501) }, "note"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := validCard()
			c.Skills = append([]registry.Skill(nil), c.Skills...)
			pt := *c.PaymentTerms
			c.PaymentTerms = &pt
			tc.mod(&c)
			err := c.Validate()
			require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "%v", err)
			require.Contains(t, apperr.MessageOf(err), tc.msg)
		})
	}
}

func TestClaimsValidate(t *testing.T) {
	t.Parallel()
	ok := registry.Claims{Subject: registry.NewDID(), ID: "j", Scope: "agent", IssuedAt: 10, NotBefore: 10, ExpiresAt: 20, Generation: 1}
	require.NoError(t, ok.Validate())
	for name, mod := range map[string]func(*registry.Claims){
		"scope escalation": func(c *registry.Claims) { c.Scope = "agent admin" },
		"no scope":         func(c *registry.Claims) { c.Scope = "" },
		"no id":            func(c *registry.Claims) { c.ID = "" },
		"bad subject":      func(c *registry.Claims) { c.Subject = "root" },
		"exp before iat":   func(c *registry.Claims) { c.ExpiresAt = 5 },
		"no generation":    func(c *registry.Claims) { c.Generation = 0 },
	} {
		c := ok
		mod(&c)
		require.Equal(t, apperr.Unauthenticated, apperr.CodeOf(c.Validate()), name)
	}
}

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	require.NoError(t, registry.ValidateEmail("a@b.c"))
	for _, bad := range []string{"", "ab", "@b.c", "a@", "a@@b", "a b@c", "a@b@c"} {
		require.Error(t, registry.ValidateEmail(bad), bad)
	}
}
