-- The embedded Hub (Hub API v3): accounts, registered dossiers and their shares.
CREATE TABLE hub_accounts (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    agb TEXT,
    api_key TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    source_api TEXT NOT NULL,
    source_url TEXT,
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX hub_accounts_agb ON hub_accounts (agb);
CREATE TABLE hub_resources (
    resource_key TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES hub_accounts (name),
    client_bsn TEXT NOT NULL,
    client_displayname TEXT NOT NULL,
    client_birthdate TEXT NOT NULL,
    reference TEXT NOT NULL,
    gravida BIGINT NOT NULL,
    para BIGINT NOT NULL,
    edd TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT,
    registered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (account, client_bsn, gravida)
);
CREATE INDEX hub_resources_bsn ON hub_resources (client_bsn);
CREATE TABLE hub_shares (
    resource_key TEXT NOT NULL REFERENCES hub_resources (resource_key),
    grantee TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY (resource_key, grantee)
);
CREATE INDEX hub_shares_grantee ON hub_shares (grantee);
