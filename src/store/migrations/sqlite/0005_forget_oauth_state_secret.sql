-- The OAuth state / connect-session HMAC key is now derived from the encryption key (HKDF), so the
-- plaintext secret earlier versions kept here is no longer read: remove it from disk.
DELETE FROM settings WHERE key = 'oauth_state_secret';
