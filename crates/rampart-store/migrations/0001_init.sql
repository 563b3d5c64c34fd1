-- Rampart registry metadata, version 1. Blob and manifest bytes live in the BlobStore; this schema
-- records which repository may see which content, tags, upload sessions and API tokens.
CREATE TABLE repositories (
    name TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL
);

-- A blob is visible in a repository only once it is linked there (upload finished or mounted).
CREATE TABLE repository_blobs (
    repository TEXT NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE TABLE manifests (
    repository TEXT NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_subject ON manifests(repository, subject) WHERE subject IS NOT NULL;

CREATE TABLE tags (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository, tag),
    FOREIGN KEY (repository, digest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY NOT NULL,
    repository TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    namespace TEXT NOT NULL,
    keyed_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
