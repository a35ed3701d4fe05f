-- The two roles of a GhostFace site (idempotent; run by `ghostface store init --create-roles` as a
-- user allowed to create roles, and again by `store migrate` so that new tables get their grants).
-- ghostface_station: reads the gallery, writes events and embeddings. ghostface_admin: changes the gallery.
-- Log-in users are members of one of them:
--   CREATE ROLE door1 LOGIN PASSWORD '...' IN ROLE ghostface_station;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ghostface_station') THEN
        CREATE ROLE ghostface_station NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ghostface_admin') THEN
        CREATE ROLE ghostface_admin NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO ghostface_station, ghostface_admin;
GRANT SELECT ON schema_version, people, photos TO ghostface_station;
GRANT SELECT, INSERT ON embeddings, events TO ghostface_station;
GRANT SELECT ON schema_version TO ghostface_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON people, photos, embeddings, events TO ghostface_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ghostface_admin;
