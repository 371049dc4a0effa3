-- The key that signs this tablet's feedback links (the QR code after a rating), made on the
-- tablet the first time it is needed; only its public half ever leaves the tablet. The server
-- tells where the links lead (base_url, tablet_id) in its answer to a sync; until it has, the
-- tablet shows no QR code and sends the public key with every sync.
CREATE TABLE feedback_signing (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    base_url   TEXT,
    tablet_id  INTEGER
);
