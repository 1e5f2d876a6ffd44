-- Core tables every cara service has in its own schema (track "core").

-- The transactional outbox: this service's stream. Rows are appended in the same transaction
-- as the state change they describe.
CREATE SEQUENCE outbox_seq;
CREATE TABLE outbox (
    seq          bigint      PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    type         text        NOT NULL,
    key          text,                         -- e.g. the referral id
    scope        text,                         -- audience filter: a force code or provider id
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    xid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    payload      bytea       NOT NULL          -- the encoded cara.Envelope
);

-- Sequence numbers must become visible in order, or a consumer reading "seq > cursor" could
-- skip a row that commits late. Every insert takes this schema's outbox lock before it draws
-- its seq, and keeps it until commit: the lock is released only after the commit is visible,
-- so no row can ever appear below a seq that a reader has already seen.
CREATE FUNCTION outbox_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA || '.outbox'));
    NEW.seq := nextval(format('%I.outbox_seq', TG_TABLE_SCHEMA));
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_assign_seq BEFORE INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_assign_seq();
CREATE INDEX outbox_scope_seq ON outbox (scope, seq);

-- Where this service has got to in each stream it consumes; moved in the same transaction
-- as the effects of the events it covers.
CREATE TABLE cursor (
    stream     text        PRIMARY KEY,
    seq        bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Event ids already applied: a second guard against applying anything twice.
CREATE TABLE inbox (
    event_id   uuid        PRIMARY KEY,
    stream     text        NOT NULL,
    seq        bigint      NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Events that could not be applied, with the reason; the cursor moved on past them.
CREATE TABLE dead_letter (
    id          bigserial   PRIMARY KEY,
    stream      text        NOT NULL,
    seq         bigint      NOT NULL,
    event_id    text,
    type        text,
    reason      text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz
);

-- Who did what, when: every change of a case, every refused request.
CREATE TABLE audit (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL,   -- "role:organisation" from the ZAP handler
    action     text        NOT NULL,
    entity     text,
    entity_id  text,
    detail     jsonb
);
CREATE INDEX audit_entity ON audit (entity, entity_id);

-- Idempotent commands: the first answer to each request id, returned again on a repeat.
CREATE TABLE request_log (
    request_key  text        PRIMARY KEY,
    content_hash text        NOT NULL,
    reply        bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
