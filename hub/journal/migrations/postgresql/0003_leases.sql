-- Singleton jobs across hub processes (hub.leases): which process runs each job, until when. The token
-- grows with each new tenure (fencing). Rows are never deleted, so the token never starts over.
-- Times are POSIX seconds in DOUBLE PRECISION (REAL is 4 bytes in PostgreSQL: minutes off today).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL,
    renewed_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
