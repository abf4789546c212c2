//! Browser sessions: a party signs in once with its token (`POST /lotline/v1/session`, from
//! the form at `GET /lotline/v1/session`) and its browser then carries an opaque session cookie
//! instead of the token. The server keeps each session's token in memory for
//! [`SESSION_LIFETIME`] (a restart signs everyone out); the cookie is `HttpOnly`, `Secure`
//! (a server with access control is reached over TLS, its own or a proxy's; browsers treat
//! loopback as secure too) and `SameSite=Strict`, and it is honoured on reads (GET and HEAD)
//! only, so no other site can make a signed-in browser write anything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "lotline_session";
/// How long a session lasts.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

/// The sessions this server has opened.
#[derive(Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    /// A new session for `token`: its id, 32 random bytes in hex.
    pub(crate) fn open(&self, token: String) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)?;
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, (_, expires)| *expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(id, _)| id.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), (token, now + SESSION_LIFETIME));
        Ok(id)
    }

    /// The token of session `id`, while it lasts.
    pub(crate) fn token(&self, id: &str) -> Option<String> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(token, _)| token.clone())
    }

    /// Ends session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The session id a request's `Cookie` headers carry, if any.
pub(crate) fn cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_its_token_until_closed() {
        let sessions = Sessions::default();
        let a = sessions.open("token-a".into()).unwrap();
        let b = sessions.open("token-b".into()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(sessions.token(&a).as_deref(), Some("token-a"));
        sessions.close(&a);
        assert_eq!(sessions.token(&a), None);
        assert_eq!(sessions.token(&b).as_deref(), Some("token-b"));
        assert_eq!(sessions.token("guess"), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append(
            "cookie",
            "theme=dark; lotline_session=abc123".parse().unwrap(),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("abc123"));
        assert_eq!(cookie(&axum::http::HeaderMap::new()), None);
    }
}
