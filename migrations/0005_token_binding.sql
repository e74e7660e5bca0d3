-- RFC 8705: an access token issued over mutual TLS is bound to the client's certificate. The
-- column holds the certificate's x5t#S256 (base64url SHA-256 of its DER), or NULL for a token
-- issued without a client certificate. (No semicolons in comments: the runner splits on them.)
ALTER TABLE tokens ADD COLUMN cnf_x5t_s256 TEXT
