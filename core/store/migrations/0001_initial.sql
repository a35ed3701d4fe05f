-- GhostFace shared store, schema version 1: the gallery (people, photos, embeddings) and the events.
-- Applied by `ghostface store init` / `ghostface store migrate` in one transaction with its row in
-- schema_version; never edit a migration that has shipped: add the next numbered file instead.

CREATE TABLE people (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (name <> ''),
    -- The name as compared (NFC, case-folded), so "ada" and "Ada" are one person, as in a folder gallery.
    name_key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT '',
    -- A deleted person is only marked: their photos stay on the server and can be restored.
    deleted_at timestamptz,
    deleted_by text
);
CREATE UNIQUE INDEX people_live_name ON people (name_key) WHERE deleted_at IS NULL;

CREATE TABLE photos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No cascade: deleting a person never destroys a photo.
    person_id bigint NOT NULL REFERENCES people (id),
    file_name text NOT NULL,
    sha256 text NOT NULL CHECK (length(sha256) = 64),
    data bytea NOT NULL,
    -- NULL: the photo shows one face. 0: a group photo whose largest face the user chose.
    face_index integer CHECK (face_index IS NULL OR face_index >= 0),
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by text NOT NULL DEFAULT '',
    UNIQUE (person_id, sha256)
);
CREATE INDEX photos_sha256 ON photos (sha256);

-- One embedding per photo content, model and preprocessing, computed once for the whole site.
CREATE TABLE embeddings (
    sha256 text NOT NULL,
    model_id text NOT NULL,
    prep text NOT NULL,
    -- Faces found in the photo (0: none; -1: the photo could not be decoded).
    faces integer NOT NULL,
    vector bytea,
    station text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, model_id, prep)
);

CREATE TABLE events (
    -- Made by the station when the event happened: a redelivered event is recognized and ignored.
    event_id uuid PRIMARY KEY,
    station text NOT NULL,
    time double precision NOT NULL,
    kind text NOT NULL,
    person text,
    similarity double precision NOT NULL,
    source text NOT NULL,
    track_id bigint NOT NULL,
    frame_index bigint NOT NULL,
    stream_time double precision NOT NULL,
    box text NOT NULL,
    api_version integer NOT NULL,
    thumbnail bytea,
    visit_id text NOT NULL DEFAULT '',
    first_seen double precision NOT NULL DEFAULT 0,
    duration_s double precision NOT NULL DEFAULT 0,
    source_label text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_station_time ON events (station, time);
CREATE INDEX events_person_time ON events (person, time);

-- Every change of the gallery, from a station or from psql, tells the listening stations at commit.
CREATE FUNCTION ghostface_gallery_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ghostface_gallery', TG_TABLE_NAME || ' ' || TG_OP);
    RETURN NULL;
END
$$;
CREATE TRIGGER people_changed AFTER INSERT OR UPDATE OR DELETE ON people
    FOR EACH STATEMENT EXECUTE FUNCTION ghostface_gallery_changed();
CREATE TRIGGER photos_changed AFTER INSERT OR UPDATE OR DELETE ON photos
    FOR EACH STATEMENT EXECUTE FUNCTION ghostface_gallery_changed();
