//! Access tokens: signed, self-contained, expiring JWTs (RFC 7519, EdDSA over Ed25519) that name
//! an org, its roles and, for auditors and readers, the scope they may read.
//!
//! An [`Issuer`] holds the issuer's private key (a file of its own, not the log-signing key) and
//! signs tokens; a [`Verifier`] holds only the public key, so every node given the same public
//! key accepts the same tokens. A token's signature is checked once: the verifier keeps what it
//! found per token, and only the times (`nbf`, `exp`) are checked on every use. Revocation is an
//! event in the log ([`lotline_domain::RevokeToken`]); the service checks it, not this module.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, TimeZone as _, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::access::{Credential, Identity, Role, Scope};

/// The `iss` of every token lotline issues.
pub const ISSUER: &str = "lotline";

/// Tokens whose checked claims are kept, so a token costs one signature check.
const CACHED_TOKENS: usize = 10_000;

/// The longest token the verifier reads (a token naming many orgs is still far below this).
const MAX_TOKEN_BYTES: usize = 16 << 10;

/// A token's claims as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The org the token speaks for.
    pub sub: String,
    /// The token's id: what a revocation names.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// `member`, `certifier`, `auditor`, `admin`.
    pub roles: Vec<String>,
    /// What an auditor (or reader) may read in full; absent: everything.
    #[serde(default, skip_serializing_if = "ScopeClaim::is_empty")]
    pub scope: ScopeClaim,
    /// Orgs a member may write for (an integrator: an importer, a co-op for its farms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_behalf_of: Vec<String>,
}

/// A scope as carried in a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeClaim {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<String>,
    /// RFC 3339; events at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339; events before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl ScopeClaim {
    fn is_empty(&self) -> bool {
        self == &ScopeClaim::default()
    }
}

/// Why a token is not accepted. Each names what is wrong, for UNAUTHENTICATED's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not one lotline's issuer signed: {0}")]
    Invalid(String),
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("the token's claims are unusable: {0}")]
    Claims(String),
}

/// The PKCS #8 DER of an Ed25519 private key (RFC 8410): a fixed prefix, then the seed.
fn pkcs8_der(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// What `lotline token issue` asks for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub org: String,
    pub roles: Vec<Role>,
    pub scope: ScopeClaim,
    pub on_behalf_of: Vec<String>,
    /// Seconds from `now` until the token expires.
    pub lifetime_secs: i64,
}

/// A token as issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issued {
    pub token: String,
    pub id: String,
    pub expires: String,
}

/// Signs tokens with the issuer's private key.
pub struct Issuer {
    key: EncodingKey,
    public: [u8; 32],
}

impl Issuer {
    /// The issuer of the Ed25519 key with this 32-byte seed.
    pub fn new(seed: &[u8; 32]) -> Self {
        let public = ed25519_public(seed);
        Issuer {
            key: EncodingKey::from_ed_der(&pkcs8_der(seed)),
            public,
        }
    }

    /// The public key (hex) that verifiers need.
    pub fn public_key(&self) -> String {
        hex::encode(self.public)
    }

    /// The verifier of this issuer's tokens.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.public)
    }

    /// Signs a token for `request`, valid from `now`.
    pub fn issue(&self, request: &TokenRequest, now: DateTime<Utc>) -> Result<Issued, TokenError> {
        if request.roles.is_empty() {
            return Err(TokenError::Claims("a token names at least one role".into()));
        }
        if request.lifetime_secs <= 0 {
            return Err(TokenError::Claims(
                "a token must expire after it is issued".into(),
            ));
        }
        let mut id = [0u8; 16];
        getrandom::getrandom(&mut id).map_err(|e| TokenError::Claims(e.to_string()))?;
        let claims = Claims {
            iss: ISSUER.into(),
            sub: request.org.clone(),
            jti: hex::encode(id),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: now.timestamp() + request.lifetime_secs,
            roles: request
                .roles
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            scope: request.scope.clone(),
            on_behalf_of: request.on_behalf_of.clone(),
        };
        // The claims must make an identity now, so that no unusable token is handed out.
        identity(&claims)?;
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|e| TokenError::Claims(e.to_string()))?;
        Ok(Issued {
            token,
            id: claims.jti,
            expires: time(claims.exp).to_rfc3339(),
        })
    }
}

/// The Ed25519 public key of a seed.
fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// A verified token: the identity it names and its validity.
#[derive(Debug, Clone)]
pub struct Verified {
    pub identity: Arc<Identity>,
    pub not_before: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl Verified {
    /// The identity, if the token is valid at `at`.
    pub fn valid_at(&self, at: DateTime<Utc>) -> Result<&Arc<Identity>, TokenError> {
        if at >= self.expires {
            return Err(TokenError::Expired(self.expires));
        }
        if at < self.not_before {
            return Err(TokenError::NotYetValid(self.not_before));
        }
        Ok(&self.identity)
    }
}

/// Checks tokens against the issuer's public key, once per token.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    public: [u8; 32],
    checked: quick_cache::sync::Cache<String, Verified>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier of tokens signed by the key whose public half this is.
    pub fn new(public: [u8; 32]) -> Self {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Times are checked against the caller's clock (or a message's stream time) by
        // [`Verified::valid_at`], on every use; the signature once.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims = ["exp", "nbf", "sub", "iss", "jti"]
            .into_iter()
            .map(String::from)
            .collect();
        validation.set_issuer(&[ISSUER]);
        Verifier {
            key: DecodingKey::from_ed_components(&x)
                .unwrap_or_else(|_| DecodingKey::from_ed_der(&public)),
            validation,
            public,
            checked: quick_cache::sync::Cache::new(CACHED_TOKENS),
        }
    }

    /// A verifier from a public key in hex.
    pub fn from_hex(public: &str) -> Result<Self, String> {
        let bytes = hex::decode(public.trim())
            .map_err(|_| "the issuer's public key is not hex".to_string())?;
        let public = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| "the issuer's public key is not 32 bytes (64 hex digits)".to_string())?;
        Ok(Verifier::new(public))
    }

    pub fn public_key(&self) -> String {
        hex::encode(self.public)
    }

    /// The token's identity and validity; the signature is checked the first time only.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        if let Some(found) = self.checked.get(token) {
            return Ok(found);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid(format!(
                "it is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| TokenError::Invalid(reason(&e)))?;
        let claims = data.claims;
        let verified = Verified {
            identity: Arc::new(identity(&claims)?),
            not_before: time(claims.nbf),
            expires: time(claims.exp),
        };
        self.checked.insert(token.to_string(), verified.clone());
        Ok(verified)
    }
}

/// What is wrong with a token, in words.
fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
            "it is not a JWT (header.payload.signature, base64url)".into()
        }
        K::InvalidSignature => "its signature does not match the issuer's key".into(),
        K::InvalidAlgorithm => "it is not signed with EdDSA".into(),
        K::InvalidIssuer => format!("its issuer (iss) is not {ISSUER:?}"),
        K::MissingRequiredClaim(claim) => format!("it has no {claim} claim"),
        _ => e.to_string(),
    }
}

fn time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The identity a token's claims name.
fn identity(claims: &Claims) -> Result<Identity, TokenError> {
    let bad = |reason: String| TokenError::Claims(reason);
    if claims.sub.trim().is_empty() {
        return Err(bad("the token names no org (sub)".into()));
    }
    let roles = claims
        .roles
        .iter()
        .map(|r| Role::parse(r).ok_or_else(|| bad(format!("unknown role {r:?}"))))
        .collect::<Result<BTreeSet<Role>, _>>()?;
    if roles.is_empty() {
        return Err(bad("the token names no role".into()));
    }
    let scope = Scope::from_claim(&claims.scope).map_err(bad)?;
    Ok(Identity {
        org: claims.sub.clone(),
        roles,
        scope,
        on_behalf_of: claims.on_behalf_of.iter().cloned().collect(),
        token_id: Some(claims.jti.clone()),
        expires: Some(time(claims.exp)),
        credential: Credential::Token,
    })
}

/// Parses a lifetime: a number and a unit (`s`, `m`, `h`, `d`), e.g. `90d`, `12h`.
pub fn parse_lifetime(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90d, 12h or 30m"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" | "" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(unit_secs)
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("{text:?} is not a usable lifetime"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(roles: Vec<Role>) -> TokenRequest {
        TokenRequest {
            org: "coop-a".into(),
            roles,
            lifetime_secs: 3600,
            ..Default::default()
        }
    }

    #[test]
    fn a_token_verifies_with_the_issuers_public_key_only() {
        let issuer = Issuer::new(&[7; 32]);
        let now = Utc::now();
        let issued = issuer.issue(&request(vec![Role::Member]), now).unwrap();
        let verifier = Verifier::from_hex(&issuer.public_key()).unwrap();
        let verified = verifier.verify(&issued.token).unwrap();
        let identity = verified.valid_at(now).unwrap();
        assert_eq!(identity.org, "coop-a");
        assert_eq!(identity.token_id.as_deref(), Some(issued.id.as_str()));
        assert!(identity.roles.contains(&Role::Member));

        // Another issuer's verifier refuses it.
        let other = Issuer::new(&[8; 32]).verifier();
        assert!(matches!(
            other.verify(&issued.token),
            Err(TokenError::Invalid(_))
        ));
        // A changed payload breaks the signature.
        let mut parts: Vec<&str> = issued.token.split('.').collect();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"iss":"lotline","sub":"coop-b","jti":"x","iat":0,"nbf":0,"exp":99999999999,"roles":["admin"]}"#,
        );
        parts[1] = &forged;
        assert!(matches!(
            verifier.verify(&parts.join(".")),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn times_are_checked_on_every_use() {
        let issuer = Issuer::new(&[7; 32]);
        let now = Utc::now();
        let issued = issuer.issue(&request(vec![Role::Auditor]), now).unwrap();
        let verified = issuer.verifier().verify(&issued.token).unwrap();
        assert!(
            verified
                .valid_at(now + chrono::Duration::seconds(3599))
                .is_ok()
        );
        assert!(matches!(
            verified.valid_at(now + chrono::Duration::seconds(3600)),
            Err(TokenError::Expired(_))
        ));
        assert!(matches!(
            verified.valid_at(now - chrono::Duration::seconds(5)),
            Err(TokenError::NotYetValid(_))
        ));
    }

    #[test]
    fn unusable_requests_are_refused() {
        let issuer = Issuer::new(&[7; 32]);
        assert!(issuer.issue(&request(vec![]), Utc::now()).is_err());
        let mut r = request(vec![Role::Member]);
        r.org = " ".into();
        assert!(issuer.issue(&r, Utc::now()).is_err());
        assert_eq!(parse_lifetime("90d"), Ok(90 * 86_400));
        assert_eq!(parse_lifetime("30m"), Ok(1_800));
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("0h").is_err());
    }
}
