-- Every response that delivers a recording's bytes — a playback or a download, whatever its
-- Range — is audited once per account, recording and session: this index finds the row that
-- is already there. (Downloads were logged at every request before; those rows stay.)
CREATE INDEX audit_log_deliveries ON audit_log(visit_id, account_id, session_tag, action)
    WHERE action IN ('play', 'download');
