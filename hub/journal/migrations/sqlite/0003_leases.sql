-- Singleton jobs across hub processes (hub.leases): which process runs each job, until when. The token
-- grows with each new tenure (fencing). Rows are never deleted, so the token never starts over.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    acquired_at REAL NOT NULL,
    renewed_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
