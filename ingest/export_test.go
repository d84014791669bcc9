package ingest

// ClaimForTest claims p's keys as a batch in flight does (see claimKeys),
// so a test can play an earlier batch that is still being written.
func (a *Applier) ClaimForTest(p *Prepared) (release func()) {
	_, release = a.claimKeys(p.items, p.plan)
	return release
}
