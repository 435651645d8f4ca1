-- Runs once, when the postgresql container initialises an empty data volume
-- (/docker-entrypoint-initdb.d). One server, separate roles and databases:
--   billing               database `billing` (the billing schema; starter-api applies migrations)
--   temporal              databases `temporal` and `temporal_visibility`, created by the
--                         temporal-schema job (temporal-sql-tool create), hence CREATEDB
-- Passwords are for a local/demo stack only: change them (and docker-compose.yml) for anything real.
CREATE ROLE billing LOGIN PASSWORD 'billing';
CREATE DATABASE billing OWNER billing;
CREATE ROLE temporal LOGIN PASSWORD 'temporal' CREATEDB;
