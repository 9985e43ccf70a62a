//! What a record keeps of a command line (`cmdline` in the configuration
//! file), decided when the record is made: the history must not become a
//! store of the passwords and tokens people pass on command lines.
//!
//! - `full`: the command line as `/proc/<pid>/cmdline` has it, arguments
//!   joined by spaces.
//! - `redacted`: the program (argv\[0\]) and every flag are kept; a value is
//!   replaced by `<redacted>` when it looks like a secret, by these rules:
//!   1. the value of a flag whose name holds a secret word (`--password=x`,
//!      `--api-key x`, `-auth-token=x`), and of `NAME=value` or `Name: value`
//!      arguments whose name holds one (`PGPASSWORD=x`, `Authorization: Bearer x`);
//!      the secret words: pass, pwd, secret, token, key, auth, cred, cookie,
//!      session, private, signature, bearer (any case, anywhere in the name);
//!   2. the password of a URL (`postgres://user:<redacted>@host/db`);
//!   3. any other argument or value that looks like a generated token: 20 or
//!      more characters without spaces, not a path (no leading `/`, `.` or
//!      `~`), made of letters, digits and `+/=_.~-` only, and either mixing
//!      upper case, lower case and digits, or 32 or more hex digits.
//!
//!   Everything else stays (file names, sizes, host names, subcommands).
//! - `none`: no command line at all (`null`).
//!
//! The default is `full`, or `redacted` when a `group` may read the history.

use serde::Deserialize;

/// What replaces a value that looks like a secret.
pub const REDACTED: &str = "<redacted>";

/// `cmdline` in the configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CmdlinePolicy {
    Full,
    Redacted,
    None,
}

impl CmdlinePolicy {
    /// The command line the record keeps of `argv` (as /proc gives it).
    pub fn apply(self, argv: &[&str]) -> Option<String> {
        if argv.is_empty() {
            return None;
        }
        match self {
            CmdlinePolicy::Full => Some(argv.join(" ")),
            CmdlinePolicy::Redacted => Some(redact(argv).join(" ")),
            CmdlinePolicy::None => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            CmdlinePolicy::Full => "full",
            CmdlinePolicy::Redacted => "redacted",
            CmdlinePolicy::None => "none",
        }
    }
}

const SECRET_WORDS: [&str; 12] = [
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "cred",
    "cookie",
    "session",
    "private",
    "signature",
    "bearer",
];

fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// A name in `NAME=value` or `Name: value`: letters, digits, `_`, `-`, `.`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Each argument as the `redacted` rules keep it.
pub fn redact(argv: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut value_is_secret = false;
    for (i, arg) in argv.iter().enumerate() {
        let is_flag = arg.len() > 1 && arg.starts_with('-');
        if i == 0 {
            out.push((*arg).to_owned());
        } else if std::mem::take(&mut value_is_secret) && !is_flag {
            out.push(REDACTED.to_owned());
        } else if is_flag {
            match arg.split_once('=') {
                Some((name, _)) if secret_name(name) => out.push(format!("{name}={REDACTED}")),
                Some((name, value)) => out.push(format!("{name}={}", redact_value(value))),
                None => {
                    value_is_secret = secret_name(arg);
                    out.push((*arg).to_owned());
                }
            }
        } else if let Some((name, value)) = arg.split_once('=').filter(|(n, _)| is_name(n)) {
            let value = if secret_name(name) { REDACTED.to_owned() } else { redact_value(value) };
            out.push(format!("{name}={value}"));
        } else if let Some((name, _)) = arg.split_once(": ").filter(|(n, _)| is_name(n) && secret_name(n)) {
            out.push(format!("{name}: {REDACTED}"));
        } else {
            out.push(redact_value(arg));
        }
    }
    out
}

/// A value by rules 2 and 3.
fn redact_value(value: &str) -> String {
    if looks_like_token(value) {
        return REDACTED.to_owned();
    }
    // scheme://user:password@host…: the password goes.
    if let Some(scheme_end) = value.find("://") {
        let rest = &value[scheme_end + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                let start = scheme_end + 3;
                return format!("{}{user}:{REDACTED}{}", &value[..start], &value[start + userinfo.len()..]);
            }
        }
    }
    value.to_owned()
}

/// Rule 3: a generated token rather than a word, a number or a path.
fn looks_like_token(value: &str) -> bool {
    if value.len() < 20 || value.starts_with(['/', '.', '~']) || value.contains("://") {
        return false;
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_.~-".contains(&b)) {
        return false;
    }
    let has = |f: fn(&u8) -> bool| value.bytes().any(|b| f(&b));
    let mixed = has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit);
    let hex = value.len() >= 32 && value.bytes().all(|b| b.is_ascii_hexdigit());
    mixed || hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(line: &str) -> String {
        CmdlinePolicy::Redacted.apply(&line.split(' ').collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn secrets_in_flags_and_variables_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redacted("java -Xmx1g -jar app.jar --api-key=abc --password hunter2 --port 8080"),
            "java -Xmx1g -jar app.jar --api-key=<redacted> --password <redacted> --port 8080"
        );
        assert_eq!(redacted("env PGPASSWORD=s3cret psql -h db"), "env PGPASSWORD=<redacted> psql -h db");
        assert_eq!(
            redacted("curl -H Authorization: Bearer_xyz https://example.org"),
            "curl -H Authorization: Bearer_xyz https://example.org",
            "split into words, `Authorization:` has no value of its own"
        );
        assert_eq!(
            CmdlinePolicy::Redacted.apply(&["curl", "-H", "Authorization: Bearer xyz"]).unwrap(),
            "curl -H Authorization: <redacted>"
        );
        assert_eq!(
            redacted("app --db=postgres://svc:pa55@db.internal:5432/x"),
            "app --db=postgres://svc:<redacted>@db.internal:5432/x"
        );
        assert_eq!(redacted("worker ghp_R4nd0mT0kenV4lue1234567"), "worker <redacted>");
        assert_eq!(
            redacted("dd if=/dev/zero of=/dev/null bs=256M count=1"),
            "dd if=/dev/zero of=/dev/null bs=256M count=1",
            "nothing secret: unchanged"
        );
        assert_eq!(
            redacted("/usr/lib/jvm/java-17-openjdk-amd64/bin/java --verbose --token --debug"),
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java --verbose --token --debug",
            "argv[0] stays; a secret flag followed by another flag has no value"
        );
        assert_eq!(
            redacted("shim -id 4f5ad1e8c0b14c7f9a2e3d6b8c1f0a9e4f5ad1e8c0b14c7f"),
            "shim -id <redacted>",
            "a long hex id is indistinguishable from a hex token"
        );
    }

    #[test]
    fn full_keeps_everything_and_none_keeps_nothing() {
        let argv = ["app", "--password=x"];
        assert_eq!(CmdlinePolicy::Full.apply(&argv).as_deref(), Some("app --password=x"));
        assert_eq!(CmdlinePolicy::None.apply(&argv), None);
        assert_eq!(CmdlinePolicy::Redacted.apply(&[]), None);
    }

    proptest::proptest! {
        /// Whatever follows a secret flag never reaches the record.
        #[test]
        fn a_secret_flags_value_never_survives(
            flag in "--(password|api-key|token|client-secret|auth)",
            value in "[A-Za-z0-9!@#%^&*()]{1,40}",
            equals in proptest::bool::ANY,
        ) {
            let argv: Vec<String> = if equals {
                vec!["prog".into(), format!("{flag}={value}")]
            } else {
                vec!["prog".into(), flag.clone(), value.clone()]
            };
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let kept = CmdlinePolicy::Redacted.apply(&argv).unwrap();
            let separator = if equals { "=" } else { " " };
            proptest::prop_assert_eq!(kept, format!("prog {flag}{separator}{REDACTED}"));
        }
    }
}
