//! The one set of machine-readable error codes the kiosk sends: in API answers (`{"code", "message"}`) and in the
//! signaling socket's `error` messages. Each code has its HTTP status here, so the API and its documentation cannot
//! drift apart: the README's list and `docs/signaling.md` are checked against [`ErrorCode::ALL`] by tests.

use super::names::wire_enum;

wire_enum!(
    /// What went wrong, in a word a client can act on.
    ErrorCode {
        // ---- request shape (API) ----
        /// The body is not JSON.
        MalformedJson = "malformed_json",
        /// The body is JSON of the wrong shape: an unknown field, a wrong type, a missing field.
        InvalidBody = "invalid_body",
        /// A value breaks a rule (the message names the field).
        InvalidField = "invalid_field",
        /// The query string cannot be read or has a bad value.
        InvalidQuery = "invalid_query",
        /// A path parameter cannot be read.
        InvalidPath = "invalid_path",
        /// The body could not be read for another reason.
        BadBody = "bad_body",
        /// The body is larger than the kiosk accepts.
        BodyTooLarge = "body_too_large",
        /// The body is not sent as `application/json`.
        UnsupportedMediaType = "unsupported_media_type",
        /// The endpoint does not take that method.
        MethodNotAllowed = "method_not_allowed",
        /// The request is malformed in a way no more specific code names (e.g. a WebSocket upgrade without its
        /// headers).
        BadRequest = "bad_request",
        /// `/api/signal` needs a WebSocket upgrade.
        UpgradeRequired = "upgrade_required",
        // ---- who is asking (API) ----
        /// The login form lacks an e-mail or a password, or they are absurdly long.
        InvalidCredentialsFormat = "invalid_credentials_format",
        /// No session: log in first (or wrong e-mail or password at login).
        Unauthenticated = "unauthenticated",
        /// The session has expired or was ended.
        SessionExpired = "session_expired",
        /// The account may not do this (another doctor's data, a technician's action, a foreign origin).
        Forbidden = "forbidden",
        /// An account on a one-time password may only choose a new one.
        PasswordChangeRequired = "password_change_required",
        /// The current password given with a password change is wrong.
        WrongPassword = "wrong_password",
        /// The new password is the current one.
        SamePassword = "same_password",
        /// The password was right; the account logs in with a second factor: send `code` too.
        SecondFactorRequired = "second_factor_required",
        /// The authenticator code or recovery code is wrong, or was used already.
        WrongSecondFactor = "wrong_second_factor",
        /// The account must set up two-factor login before anything else (`/api/auth/2fa/setup`).
        TwoFactorSetupRequired = "two_factor_setup_required",
        /// Too many password attempts; wait the seconds in `Retry-After`.
        TooManyAttempts = "too_many_attempts",
        /// Too many logins are being checked at this moment; try again after `Retry-After` (1 s).
        Busy = "busy",
        // ---- the data ----
        /// No such resource (or not one this account may see).
        NotFound = "not_found",
        /// The change conflicts with existing data (an overlapping appointment, a taken e-mail).
        Conflict = "conflict",
        /// The appointment's status cannot make that change.
        InvalidTransition = "invalid_transition",
        /// `in_call` is set only by an accepted call.
        CallManaged = "call_managed",
        /// The kiosk runs without a media engine, so it takes no calls.
        CallsUnavailable = "calls_unavailable",
        /// The kiosk failed; its log says why.
        Internal = "internal",
        // ---- signaling ----
        /// The first message on a signaling socket must be `hello`.
        HelloRequired = "hello_required",
        /// The page speaks a protocol version this kiosk does not.
        UnsupportedVersion = "unsupported_version",
        /// A frame that is not a protocol message.
        InvalidMessage = "invalid_message",
        /// A frame over the size limit.
        MessageTooLarge = "message_too_large",
        /// The appointment's patient has not checked in.
        NotCheckedIn = "not_checked_in",
        /// The browser and the kiosk have no video codec in common.
        NoCommonCodec = "no_common_codec",
        /// No call with that id belongs to this doctor.
        NoSuchCall = "no_such_call",
        /// The browser's answer cannot carry the call.
        NegotiationFailed = "negotiation_failed",
        /// The connection failed too many times in a row.
        MediaFailed = "media_failed",
    }
);

impl ErrorCode {
    /// The HTTP status an API answer with this code has.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedJson
            | InvalidQuery
            | InvalidPath
            | BadBody
            | InvalidCredentialsFormat
            | SamePassword
            | BadRequest => 400,
            UpgradeRequired => 426,
            Unauthenticated | SessionExpired | SecondFactorRequired | WrongSecondFactor => 401,
            Forbidden | PasswordChangeRequired | WrongPassword | TwoFactorSetupRequired => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            Conflict | InvalidTransition | CallManaged => 409,
            BodyTooLarge => 413,
            UnsupportedMediaType => 415,
            InvalidBody | InvalidField => 422,
            TooManyAttempts => 429,
            Internal => 500,
            CallsUnavailable | Busy => 503,
            // Sent only on the signaling socket; as an HTTP status they would be a bad request.
            HelloRequired | UnsupportedVersion | InvalidMessage | MessageTooLarge | NotCheckedIn | NoCommonCodec
            | NoSuchCall | NegotiationFailed | MediaFailed => 400,
        }
    }

    /// Whether the REST API can answer with this code (the README lists these).
    pub fn used_by_api(self) -> bool {
        use ErrorCode::*;
        !matches!(
            self,
            HelloRequired
                | UnsupportedVersion
                | InvalidMessage
                | MessageTooLarge
                | NotCheckedIn
                | NoCommonCodec
                | NoSuchCall
                | NegotiationFailed
                | MediaFailed
        )
    }

    /// Whether the signaling socket can send this code in an `error` message (docs/signaling.md lists these).
    pub fn used_by_signaling(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            HelloRequired
                | UnsupportedVersion
                | InvalidMessage
                | MessageTooLarge
                | NotFound
                | Forbidden
                | NotCheckedIn
                | NoCommonCodec
                | NoSuchCall
                | NegotiationFailed
                | MediaFailed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backticked words of the paragraph that starts with `heading` in `doc`.
    fn listed_codes(doc: &str, heading: &str) -> Vec<String> {
        let start = doc.find(heading).unwrap_or_else(|| panic!("no `{heading}` in the document")) + heading.len();
        let para = doc[start..].split("\n\n").next().unwrap_or("");
        para.split('`').skip(1).step_by(2).map(str::to_string).collect()
    }

    #[test]
    fn the_readme_lists_exactly_the_api_codes() {
        let listed = listed_codes(include_str!("../../README.md"), "Error codes:");
        let expected: Vec<String> =
            ErrorCode::ALL.iter().filter(|c| c.used_by_api()).map(|c| c.as_str().to_string()).collect();
        for c in &expected {
            assert!(listed.contains(c), "README.md's error codes lack `{c}`");
        }
        for c in &listed {
            assert!(expected.contains(c), "README.md lists `{c}`, which the API never sends");
        }
    }

    #[test]
    fn the_signaling_document_lists_exactly_the_signaling_codes() {
        let listed = listed_codes(include_str!("../../docs/signaling.md"), "`error` codes:");
        let mut expected: Vec<String> =
            ErrorCode::ALL.iter().filter(|c| c.used_by_signaling()).map(|c| c.as_str().to_string()).collect();
        let mut listed = listed;
        expected.sort();
        listed.sort();
        assert_eq!(listed, expected, "docs/signaling.md's `error` codes");
    }

    #[test]
    fn statuses_are_client_or_server_errors() {
        for c in ErrorCode::ALL {
            assert!((400..600).contains(&c.http_status()), "{c}");
        }
        assert_eq!(ErrorCode::TooManyAttempts.http_status(), 429);
    }
}
