package registrystore

import "context"

// MaxAgentDevelopers bounds one AgentDevelopers call.
const MaxAgentDevelopers = 1_000_000

// AgentDevelopers returns the developer ID of each listed agent this
// registry knows (agents of other registries are left out), for
// governance's grouping of stake by developer.
func (s *Store) AgentDevelopers(ctx context.Context, dids []string) (map[string]string, error) {
	if len(dids) > MaxAgentDevelopers {
		dids = dids[:MaxAgentDevelopers]
	}
	rows, err := s.q.AgentDevelopers(ctx, s.Pool, dids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Did] = r.DeveloperID.String()
	}
	return out, nil
}
