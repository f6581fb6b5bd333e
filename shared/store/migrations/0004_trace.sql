-- The W3C trace id (32 hex digits) of the delivery that last claimed, finished or completed the job: the key that
-- finds its log lines and its provider calls. NULL for rows written before this column or by an older worker.
ALTER TABLE jobs ADD COLUMN trace_id text;
