-- Logins are kept in their normal form (see domain::names::Login): trimmed and lower-case, so
-- that sign-in, throttling and creation agree on which account a login names.
UPDATE accounts SET login = lower(trim(login, ' ' || char(9) || char(10) || char(13)));
