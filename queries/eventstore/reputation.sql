-- Reputation runs (ingest/reputation.go); written by the reputation run only.

-- name: ReputationRunGet :one
SELECT run_id, prev_run_id, seq, computed_at, scan_from, done_ids, gap_ids, gap_seen, events_merged,
       params, agents, edges, iterations, converged, delta, breached, input_digest, digest
FROM reputation_runs WHERE run_id = @run_id;

-- name: ReputationRunLatest :one
SELECT run_id, prev_run_id, seq, computed_at, scan_from, done_ids, gap_ids, gap_seen, events_merged,
       params, agents, edges, iterations, converged, delta, breached, input_digest, digest
FROM reputation_runs ORDER BY seq DESC LIMIT 1;

-- name: ReputationRunGraph :one
SELECT graph FROM reputation_runs WHERE run_id = @run_id;

-- name: ReputationRunInsert :exec
INSERT INTO reputation_runs (run_id, prev_run_id, seq, computed_at, scan_from, done_ids, gap_ids, gap_seen,
    events_merged, params, agents, edges, iterations, converged, delta, breached, input_digest, digest, graph)
VALUES (@run_id, @prev_run_id, @seq, @computed_at, @scan_from, @done_ids::bigint[], @gap_ids::bigint[],
    @gap_seen::timestamptz[], @events_merged, @params, @agents, @edges, @iterations, @converged, @delta,
    @breached::text[], @input_digest, @digest, @graph);

-- name: ReputationRunsPrune :exec
-- Runs at or below the sequence number go, with their scores.
DELETE FROM reputation_runs WHERE seq <= @max_seq;

-- name: ReputationScoresInsert :exec
INSERT INTO reputation_scores (run_id, agent, score, trust_bps, rank, percentile)
SELECT @run_id, unnest(@agents::text[]), unnest(@scores::float8[]), unnest(@trust_bps::int[]),
       unnest(@ranks::int[]), unnest(@percentiles::float8[]);

-- name: ReputationScoreOfAgent :one
-- The agent's score in the newest run that scored it.
SELECT s.run_id, s.score, s.trust_bps, s.rank, s.percentile
FROM reputation_scores s JOIN reputation_runs r USING (run_id)
WHERE s.agent = @agent ORDER BY r.seq DESC LIMIT 1;

-- name: ReputationScoresOf :many
SELECT agent, score, trust_bps, rank, percentile FROM reputation_scores
WHERE run_id = @run_id AND agent = ANY(@agents::text[]);
