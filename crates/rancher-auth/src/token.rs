//! The bearer token: `token-xxxxx:<secret>` (or `ext/token-xxxxx:<secret>`), a secret from the moment it is parsed.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// The length of the secret part of a token Rancher generates.
pub const RANCHER_SECRET_LEN: usize = 54;

pub use crate::error::TokenMistake;

/// A Rancher bearer token. The whole value is a [`SecretString`]; only the access key (the token's name, not
/// secret) is kept in the clear, for look-ups. `Debug` and `Display` show the access key and the masked form.
#[derive(Clone)]
pub struct BearerToken {
    access_key: String,
    ext: bool,
    secret_len: usize,
    masked: String,
    full: SecretString,
}

impl BearerToken {
    /// Checks a token exactly as given. A refusal names the mistake; it never contains the token or its secret.
    pub fn parse(input: &str) -> Result<BearerToken> {
        let refuse = |mistake, message: String| Error::InvalidToken { mistake, message };
        if input.trim().is_empty() {
            return Err(refuse(
                TokenMistake::Empty,
                "it is empty; paste the Bearer Token shown when the API key was created (`token-xxxxx:<secret>`)"
                    .into(),
            ));
        }
        let trimmed = input.trim();
        let unquoted = trimmed.trim_matches(|c| c == '"' || c == '\'' || c == '`');
        if unquoted.len() != trimmed.len() {
            return Err(refuse(
                TokenMistake::Quoted,
                "it is wrapped in quotes; paste the token without them".into(),
            ));
        }
        if trimmed.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) {
            return Err(refuse(
                TokenMistake::BearerPrefix,
                "it starts with `Bearer `; paste only the token (`token-xxxxx:<secret>`), the prefix is added automatically".into(),
            ));
        }
        if input.contains(['\n', '\r']) {
            return Err(refuse(
                TokenMistake::Newline,
                "it contains a line break; paste the token on one line, without a trailing newline".into(),
            ));
        }
        if input.chars().any(char::is_whitespace) {
            let where_ = if trimmed.len() != input.len() {
                "around"
            } else {
                "inside"
            };
            return Err(refuse(
                TokenMistake::Whitespace,
                format!("it has spaces {where_} it; paste the token without them"),
            ));
        }
        let (ext, body) = match input.strip_prefix("ext/") {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        if !ext && looks_like_legacy(body) {
            return Ok(BearerToken {
                access_key: String::new(),
                ext: false,
                secret_len: body.len(),
                masked: mask(input),
                full: SecretString::from(input.to_string()),
            });
        }
        let Some((name, secret)) = body.split_once(':') else {
            if looks_like_name(body) {
                return Err(refuse(
                    TokenMistake::AccessKeyOnly,
                    format!(
                        "`{body}` is only the access key; paste the full Bearer Token `{body}:<secret key>` shown when the API key was created"
                    ),
                ));
            }
            return Err(refuse(
                TokenMistake::SecretKeyOnly,
                format!(
                    "this looks like only the secret key ({}); paste the full Bearer Token `token-xxxxx:<secret key>` shown when the API key was created",
                    mask(body)
                ),
            ));
        };
        if name.is_empty() {
            return Err(refuse(
                TokenMistake::SecretKeyOnly,
                "the access key before `:` is missing; paste the full Bearer Token `token-xxxxx:<secret key>`".into(),
            ));
        }
        if !looks_like_name(name) {
            return Err(refuse(
                TokenMistake::InvalidAccessKey,
                "the part before `:` is not a token name (e.g. `token-xxxxx`): letters, digits, `-` and `.` only; paste the full Bearer Token".into(),
            ));
        }
        if secret.is_empty() {
            return Err(refuse(
                TokenMistake::EmptySecret,
                format!(
                    "`{name}:` has no secret key after the colon; paste the full Bearer Token `{name}:<secret key>`"
                ),
            ));
        }
        if let Some(c) = secret
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.~+/=".contains(*c)))
        {
            let what = if c == ':' {
                "a second `:`".to_string()
            } else {
                "a character a token never has".to_string()
            };
            return Err(refuse(
                TokenMistake::InvalidSecret,
                format!("the secret key of `{name}` holds {what}; paste the Bearer Token exactly as Rancher showed it"),
            ));
        }
        Ok(BearerToken {
            access_key: name.to_string(),
            ext,
            secret_len: secret.len(),
            masked: mask(input),
            full: SecretString::from(input.to_string()),
        })
    }

    /// Like [`BearerToken::parse`], but first drops the one line ending a pipe or a file adds (for `--token-stdin`
    /// and token files). Anything else around the token is still refused.
    pub fn parse_input(input: &str) -> Result<BearerToken> {
        let one = input
            .strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s))
            .unwrap_or(input);
        BearerToken::parse(one)
    }

    /// The access key (the token's name, `token-xxxxx`; not secret). For ext tokens, without `ext/`.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// True for an ext token (`ext/token-xxxxx:...`, Rancher 2.12+).
    pub fn is_ext(&self) -> bool {
        self.ext
    }

    /// True for a kubeconfig token (`kubeconfig-<user id>xxxxx`): it may be scoped to one cluster.
    pub fn is_kubeconfig(&self) -> bool {
        self.access_key.starts_with("kubeconfig-")
    }

    /// Length of the secret part (Rancher's are [`RANCHER_SECRET_LEN`]); shorter often means a cut paste.
    pub fn secret_len(&self) -> usize {
        self.secret_len
    }

    /// The masked form: `****` and the last 4 characters.
    pub fn masked(&self) -> &str {
        &self.masked
    }

    /// The whole bearer value as a secret, for the `Authorization` header.
    pub fn secret(&self) -> &SecretString {
        &self.full
    }

    /// True for a Rancher 1.x token (a `jwt` from `POST /v1/token`): it has no `name:secret` form, so
    /// [`BearerToken::access_key`] is empty.
    pub fn is_legacy(&self) -> bool {
        self.access_key.is_empty()
    }

    /// True when both hold the same token.
    pub fn same_as(&self, other: &BearerToken) -> bool {
        self.full.expose_secret() == other.full.expose_secret()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("access_key", &self.access_key)
            .field("token", &self.masked)
            .finish()
    }
}

impl fmt::Display for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl FromStr for BearerToken {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BearerToken::parse(s)
    }
}

/// Masks a secret value: `****` and its last 4 characters (fewer when it is very short: never more than half).
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let show = if chars.len() >= 8 { 4 } else { chars.len() / 2 };
    // Control characters show as `?`: a mask is printed, and must stay one plain line.
    let tail: String = chars[chars.len() - show..]
        .iter()
        .map(|c| if c.is_control() { '?' } else { *c })
        .collect();
    format!("****{tail}")
}

/// `text` with everything shaped like a bearer token masked as [`mask`] does: a JWT (`eyJ...` in three
/// base64url parts), and any run of 32 or more ASCII letters and digits that is not lower-case hex (a 2.x secret
/// is 54 such characters, a 1.x key 40; hashes stay readable). For echoing user input in errors: a token pasted
/// into the wrong field is never shown whole.
pub fn mask_secrets(text: &str) -> String {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // A JWT: three base64url parts joined by dots.
        let starts_word = !out.chars().next_back().is_some_and(|p| b64(p) || p == '.');
        if starts_word && rest.starts_with("eyJ") {
            let end = rest.find(|c: char| !(b64(c) || c == '.')).unwrap_or(rest.len());
            let word = &rest[..end];
            if word.split('.').filter(|p| !p.is_empty()).count() >= 3 {
                out.push_str(&mask(word));
                rest = &rest[end..];
                continue;
            }
        }
        if c.is_ascii_alphanumeric() {
            let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
            let run = &rest[..end];
            let hex = run.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
            if run.len() >= 32 && !hex {
                out.push_str(&mask(run));
            } else {
                out.push_str(run);
            }
            rest = &rest[end..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A Rancher 1.x bearer: the `jwt` of `POST /v1/token` (three base64url parts) or a 40-character key. A 2.x
/// secret pasted alone never matches: it is lower case and digits only.
fn looks_like_legacy(s: &str) -> bool {
    let b64 = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let jwt = s.starts_with("eyJ") && s.split('.').count() == 3 && s.split('.').all(b64);
    let key =
        s.len() == 40 && s.chars().all(|c| c.is_ascii_alphanumeric()) && s.chars().any(|c| c.is_ascii_uppercase());
    jwt || key
}

fn looks_like_name(s: &str) -> bool {
    !s.is_empty()
        && s.contains('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod mask_tests {
    #[test]
    fn secrets_in_free_text_are_masked_and_hashes_kept() {
        let secret = "x4ppfdpd89nsk9mc9c2ght4z7gdkb2hpq6b5kc952ddng9rmznxs84";
        let text = format!("error: --input `token-gcwhb:{secret}` is not key=value");
        assert_eq!(
            super::mask_secrets(&text),
            "error: --input `token-gcwhb:****xs84` is not key=value"
        );
        assert_eq!(super::mask_secrets(&format!("user={secret}.")), "user=****xs84.");
        let key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd";
        assert_eq!(super::mask_secrets(&format!("`{key}`")), "`****AbCd`");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LWFiYzEyIn0.c2ln-bmF0_dXJl";
        assert_eq!(super::mask_secrets(&format!("id {jwt}: no")), "id ****dXJl: no");
        // Hashes, request ids, names and short words stay as they are.
        let kept =
            "head 17:3f2a9c0e5b7d1a4f6e8c2b0d9a7f5e3c1b8d6a4f2e0c9b7a5d3f1e8c6b4a2d0f req-01m8t2anr5exra93cg8jtn8frv \
                    create-global-role-binding rancher.example.com:8443 eyJ.x";
        assert_eq!(super::mask_secrets(kept), kept);
    }

    #[test]
    fn masks_print_no_control_characters() {
        // Found by the `token` fuzz target: a refusal showed the masked input with a control character.
        assert_eq!(super::mask("abcdefgh\u{4}"), "****fgh?");
        let e = super::BearerToken::parse("pvwss586wwdd46bxgcl7\u{4}")
            .unwrap_err()
            .to_string();
        assert!(!e.contains(char::is_control), "{e:?}");
    }
}

#[cfg(test)]
mod legacy_tests {
    use super::*;

    #[test]
    fn rancher_1x_bearers_are_accepted_and_2x_secrets_alone_are_still_refused() {
        let key = "Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd4fGh6jKl8m";
        let t = BearerToken::parse(key).unwrap();
        assert!(t.is_legacy() && t.access_key().is_empty());
        assert!(!format!("{t:?} {t}").contains(key), "masked");
        assert!(
            BearerToken::parse("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxYTEifQ.c2lnbmF0dXJl")
                .unwrap()
                .is_legacy()
        );
        let secret_only = "pvwss586wwdd46bxgcl7bghkkbbgqgc7hqgkx9rzsw65sgbsd5wzmt";
        let e = BearerToken::parse(secret_only).unwrap_err().to_string();
        assert!(e.contains("only the secret key"), "{e}");
        assert!(
            !BearerToken::parse("token-8blls:pvwss586wwdd46bxgcl7bghkkbbgqgc7hqgkx9rzsw65sgbsd5wzmt")
                .unwrap()
                .is_legacy()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "pvwss586wwdd46bxgcl7bghkkbbgqgc7hqgkx9rzsw65sgbsd5wzmt";
    const TOKEN: &str = "token-8blls:pvwss586wwdd46bxgcl7bghkkbbgqgc7hqgkx9rzsw65sgbsd5wzmt";

    fn refused(input: &str) -> (TokenMistake, String) {
        match BearerToken::parse(input) {
            Err(Error::InvalidToken { mistake, message }) => {
                assert!(!message.contains(SECRET), "message leaks the secret: {message}");
                (mistake, message)
            }
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn accepts_real_forms() {
        let t = BearerToken::parse(TOKEN).unwrap();
        assert_eq!(t.access_key(), "token-8blls");
        assert!(!t.is_ext() && !t.is_kubeconfig());
        assert_eq!(t.secret_len(), RANCHER_SECRET_LEN);
        assert_eq!(t.secret().expose_secret(), TOKEN);

        let ext = BearerToken::parse(&format!("ext/{TOKEN}")).unwrap();
        assert!(ext.is_ext());
        assert_eq!(ext.access_key(), "token-8blls");
        assert_eq!(ext.secret().expose_secret(), format!("ext/{TOKEN}"));

        let kc = BearerToken::parse("kubeconfig-user-abcdexyz12:abc123").unwrap();
        assert!(kc.is_kubeconfig());
        assert_eq!(kc.secret_len(), 6, "other lengths are accepted");
    }

    #[test]
    fn masking_shows_the_last_four_only() {
        let t = BearerToken::parse(TOKEN).unwrap();
        assert_eq!(t.masked(), "****wzmt");
        assert_eq!(t.to_string(), "****wzmt");
        let dbg = format!("{t:?}");
        assert_eq!(dbg, r#"BearerToken { access_key: "token-8blls", token: "****wzmt" }"#);
        assert!(!dbg.contains(SECRET));
        assert_eq!(mask("abc"), "****c");
        assert_eq!(mask(""), "****");
    }

    #[test]
    fn access_key_only() {
        let (m, msg) = refused("token-8blls");
        assert_eq!(m, TokenMistake::AccessKeyOnly);
        assert!(
            msg.contains("only the access key") && msg.contains("token-8blls:<secret key>"),
            "{msg}"
        );
        assert_eq!(refused("kubeconfig-u-abcde12345").0, TokenMistake::AccessKeyOnly);
    }

    #[test]
    fn secret_key_only() {
        let (m, msg) = refused(SECRET);
        assert_eq!(m, TokenMistake::SecretKeyOnly);
        assert!(msg.contains("only the secret key") && msg.contains("****wzmt"), "{msg}");
        assert_eq!(refused(&format!(":{SECRET}")).0, TokenMistake::SecretKeyOnly);
    }

    #[test]
    fn bearer_prefix_quotes_whitespace_newline() {
        let (m, msg) = refused(&format!("Bearer {TOKEN}"));
        assert_eq!(m, TokenMistake::BearerPrefix);
        assert!(msg.contains("`Bearer `"), "{msg}");
        assert_eq!(refused(&format!("bearer {TOKEN}")).0, TokenMistake::BearerPrefix);
        assert_eq!(refused(&format!("\"{TOKEN}\"")).0, TokenMistake::Quoted);
        assert_eq!(refused(&format!("'{TOKEN}'")).0, TokenMistake::Quoted);
        assert_eq!(refused(&format!(" {TOKEN}")).0, TokenMistake::Whitespace);
        assert_eq!(refused(&format!("{TOKEN}\t")).0, TokenMistake::Whitespace);
        assert_eq!(refused("token-8blls: pvwss586").0, TokenMistake::Whitespace);
        assert_eq!(refused(&format!("{TOKEN}\n")).0, TokenMistake::Newline);
        assert_eq!(refused(&format!("token-8blls:\n{SECRET}")).0, TokenMistake::Newline);
    }

    #[test]
    fn empty_and_broken_parts() {
        assert_eq!(refused("").0, TokenMistake::Empty);
        assert_eq!(refused(" \n").0, TokenMistake::Empty);
        let (m, msg) = refused("token-8blls:");
        assert_eq!(m, TokenMistake::EmptySecret);
        assert!(msg.contains("`token-8blls:`"), "{msg}");
        assert_eq!(refused(&format!("tok en:{SECRET}")).0, TokenMistake::Whitespace);
        assert_eq!(
            refused(&format!("token_8blls:{SECRET}")).0,
            TokenMistake::InvalidAccessKey
        );
        assert_eq!(
            refused(&format!("token-8blls:{SECRET}:x")).0,
            TokenMistake::InvalidSecret
        );
        assert_eq!(
            refused(&format!("token-8blls:{SECRET}é")).0,
            TokenMistake::InvalidSecret
        );
    }

    #[test]
    fn stdin_form_drops_one_line_ending_only() {
        assert!(BearerToken::parse_input(&format!("{TOKEN}\n")).is_ok());
        assert!(BearerToken::parse_input(&format!("{TOKEN}\r\n")).is_ok());
        assert_eq!(
            match BearerToken::parse_input(&format!("{TOKEN}\n\n")) {
                Err(Error::InvalidToken { mistake, .. }) => mistake,
                other => panic!("{other:?}"),
            },
            TokenMistake::Newline
        );
    }
}
