-- Roles and schemas of a cara database: each service has its own login role that owns its own
-- schema and has no rights on any other. Run as a superuser with psql -v db=<database>.
-- Passwords are set separately (deploy/compose) or not at all (local trust on a private socket).
SELECT format('CREATE ROLE %I LOGIN', 'cara_' || s)
  FROM unnest(ARRAY['intake', 'triage', 'booking', 'billing', 'national']) AS s
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cara_' || s) \gexec
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s, 'cara_' || s)
  FROM unnest(ARRAY['intake', 'triage', 'booking', 'billing', 'national']) AS s \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', 'cara_' || s)
  FROM unnest(ARRAY['intake', 'triage', 'booking', 'billing', 'national']) AS s \gexec
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
