-- +goose Up
-- Ingest writes s2-compressed segments (ingest/segment.go says why);
-- segments written before stay zstd and replays read both.
ALTER TABLE event_segments DROP CONSTRAINT event_segments_codec_check,
    ADD CONSTRAINT event_segments_codec_check CHECK (codec IN ('zstd-uvarint-v1', 's2-uvarint-v1'));

-- +goose Down
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM event_segments WHERE codec <> 'zstd-uvarint-v1') THEN
        RAISE EXCEPTION 'event_segments holds s2 segments; migrating down would make them unreadable';
    END IF;
END
$$;
ALTER TABLE event_segments DROP CONSTRAINT event_segments_codec_check,
    ADD CONSTRAINT event_segments_codec_check CHECK (codec = 'zstd-uvarint-v1');
