-- One database per service (no service reads another's data). Run once by the postgres image on
-- an empty data directory, as POSTGRES_USER, who therefore owns them all: fine for a dev stack.
-- In production give each service its own role owning only its database.
CREATE DATABASE gateway;
CREATE DATABASE contacts;
CREATE DATABASE deals;
CREATE DATABASE campaigns;
CREATE DATABASE notifications;
CREATE DATABASE reports;
