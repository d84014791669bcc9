-- Databases are created by `theprotocol migrate`; this only prepares the
-- cluster-wide settings every role database relies on.
ALTER SYSTEM SET idle_in_transaction_session_timeout = '60s';
ALTER SYSTEM SET lock_timeout = '10s';
