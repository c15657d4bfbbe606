//! NATS decentralised authentication (operator mode) for tests: an operator, its system
//! account and an application account with JetStream, each a fresh nkey; the signed JWTs
//! (claims as in `nats-io/jwt` v2: `v2/claims.go`, `account_claims.go`, `user_claims.go`); the
//! `nats-server` configuration trusting them through a memory resolver; and users' `.creds`
//! files, as `nsc` would make them.
//!
//! A JWT is `base64url(header) . base64url(claims) . base64url(signature)`, without padding,
//! signed with ed25519 by the issuer's nkey over the first two parts.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// No limit, in every JWT limit field.
const UNLIMITED: i64 = -1;

/// An operator trusting two accounts: its system account and [`OperatorMode::app`].
pub struct OperatorMode {
    operator: KeyPair,
    system: KeyPair,
    /// The application account, with unlimited JetStream; its users are the services.
    pub app: KeyPair,
}

impl OperatorMode {
    /// Fresh keys for the operator and both accounts.
    pub fn new() -> Self {
        Self {
            operator: KeyPair::new_operator(),
            system: KeyPair::new_account(),
            app: KeyPair::new_account(),
        }
    }

    /// The `nats-server` configuration: trust the operator, and know exactly the two accounts
    /// (preloaded in a memory resolver, so a user of any other account is refused). JetStream
    /// is on; the test toolkit's `-js -sd <dir>` picks its store.
    pub fn server_config(&self) -> Result<String> {
        let system = self.system.public_key();
        let app = self.app.public_key();
        let operator_jwt = sign(
            &self.operator,
            &self.operator.public_key(),
            "test-operator",
            json!({"type": "operator", "version": 2, "system_account": system}),
        )?;
        let system_jwt = sign(&self.operator, &system, "SYS", account_claims(false))?;
        let app_jwt = sign(&self.operator, &app, "APP", account_claims(true))?;
        Ok(format!(
            "operator: \"{operator_jwt}\"\nsystem_account: {system}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {system}: \"{system_jwt}\"\n  {app}: \"{app_jwt}\"\n}}\n\
             jetstream: enabled\n"
        ))
    }
}

/// The contents of a `.creds` file for a new user of `account`, its JWT signed by that
/// account's key, allowed to publish and subscribe to everything.
pub fn user_creds(account: &KeyPair, name: &str) -> Result<String> {
    let user = KeyPair::new_user();
    let claims = json!({
        "type": "user",
        "version": 2,
        "pub": {},
        "sub": {},
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
    });
    let jwt = sign(account, &user.public_key(), name, claims)?;
    let seed = user.seed().context("the user's nkey seed")?;
    Ok(format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    ))
}

/// An account's `nats` claims: no limits, and unlimited JetStream if `jetstream` (an account
/// gets JetStream only when its JWT gives it storage).
fn account_claims(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": true,
        "conn": UNLIMITED,
        "leaf": UNLIMITED,
    });
    if jetstream {
        for field in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[field] = json!(UNLIMITED);
        }
    }
    json!({"type": "account", "version": 2, "limits": limits})
}

/// A JWT about `subject` with the `nats` claims given, issued and signed by `issuer`.
fn sign(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> Result<String> {
    let header = json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let claims = json!({
        // Any unique id does: servers do not recompute it (nsc uses a hash of the claims).
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
    );
    let signature = issuer.sign(signed.as_bytes()).context("signing a JWT")?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
