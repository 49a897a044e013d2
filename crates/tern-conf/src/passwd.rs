//! Mosquitto 2.x password files: parsing, verification in constant time, hashing with a
//! caller-supplied salt, and the edits `tern passwd` makes (add or update a user, delete a
//! user, convert plain `user:password` lines), all on file *contents*.
//!
//! Owns the line format `user:$7$<iterations>$<b64 salt>$<b64 hash>` (PBKDF2-HMAC-SHA512,
//! 64-byte output) and `user:$6$<b64 salt>$<b64 hash>` (SHA-512 of password then salt), with a
//! 12-byte salt and standard base64 with `=` padding, exactly as Mosquitto 2.0 writes them
//! (`apps/mosquitto_passwd/mosquitto_passwd.c`, `src/password_mosq.c`).
//!
//! Must not read files, the clock or an RNG: the CLI reads and writes the file and draws the
//! salt. Must not panic on any input.
//!
//! How a file is read (`src/security_default.c` `pwfile__parse`, checked against Debian's
//! Mosquitto 2.0.11):
//! - `#` lines and blank lines are skipped; user name and hash are trimmed of blanks.
//! - A bad line does not fail the file. It is reported as a [`LineError`] with path and line,
//!   and **the user named on it is refused**, even when another line for the same user is
//!   valid. Mosquitto 2.0.11 silently keeps the other line instead; tern fails closed because
//!   it cannot know which password the administrator meant.
//! - A user listed twice with valid hashes: the **later line wins**, as in Mosquitto 2.0.11
//!   (uthash finds the entry added last). tern also reports the duplicate so it can be cleaned
//!   up.
//! - A line without `:` is reported (Mosquitto skips it silently).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Length of the salt Mosquitto 2.0 generates and accepts.
pub const SALT_LEN: usize = 12;
/// Length of both hash outputs (SHA-512 and PBKDF2-HMAC-SHA512 with dkLen 64).
pub const HASH_LEN: usize = 64;
/// PBKDF2 iterations `mosquitto_passwd` 2.0.x uses by default (`PW_DEFAULT_ITERATIONS`).
pub const DEFAULT_ITERATIONS: u32 = 101;
/// Highest iteration count tern accepts in a password file or from `-I`. Mosquitto has no
/// limit; tern refuses more because every CONNECT with that user would cost seconds of CPU
/// (PBKDF2-HMAC-SHA512 runs about a million iterations per second per core), which a
/// client could use to stall the broker. Mosquitto 2.1 uses 210 000.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Longest user name: an MQTT UTF-8 string holds at most 65 535 bytes [MQTT-1.5.4].
pub const MAX_USERNAME_LEN: usize = 65_535;

/// Standard alphabet; writes `=` padding (as OpenSSL's BIO does), reads with or without it.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The two hash types `mosquitto_passwd -H` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// `$6$`: SHA-512(password ‖ salt). Mosquitto 1.6's default; weak, kept for old files.
    Sha512,
    /// `$7$`: PBKDF2-HMAC-SHA512. Mosquitto 2.0's default.
    Sha512Pbkdf2,
}

impl HashAlgorithm {
    /// The name `mosquitto_passwd -H` takes: `sha512` or `sha512-pbkdf2`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha512 => "sha512",
            Self::Sha512Pbkdf2 => "sha512-pbkdf2",
        }
    }

    /// Parses the `-H` argument.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha512" => Some(Self::Sha512),
            "sha512-pbkdf2" => Some(Self::Sha512Pbkdf2),
            _ => None,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a hash string (the part after `user:`) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Not `$6$...` or `$7$...`; often a plain-text password.
    #[error("the password is not hashed")]
    NotHashed,
    /// `$<id>$` that tern does not implement (e.g. `$argon2id$` from Mosquitto 2.1).
    #[error(
        "unsupported hash type \"${0}$\"; tern understands $6$ (sha512) and $7$ (sha512-pbkdf2)"
    )]
    UnsupportedType(String),
    /// Wrong number of `$`-separated fields.
    #[error("the hash does not have the form {0}")]
    Shape(&'static str),
    /// `$7$` iteration count that is not an integer from 1 to [`MAX_ITERATIONS`].
    #[error("iteration count \"{0}\" is not an integer from 1 to 10000000")]
    Iterations(String),
    /// Salt is not base64 or not [`SALT_LEN`] bytes.
    #[error("the salt is not {SALT_LEN} bytes of base64")]
    Salt,
    /// Hash is not base64 or not [`HASH_LEN`] bytes.
    #[error("the hash is not {HASH_LEN} bytes of base64")]
    Hash,
}

/// A parsed password hash. Debug output shows the algorithm only, never the hash bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$<salt>$<hash>`.
    Sha512 {
        /// Random salt appended to the password before hashing.
        salt: [u8; SALT_LEN],
        /// SHA-512(password ‖ salt).
        hash: [u8; HASH_LEN],
    },
    /// `$7$<iterations>$<salt>$<hash>`.
    Pbkdf2Sha512 {
        /// PBKDF2 iteration count, 1..=[`MAX_ITERATIONS`].
        iterations: u32,
        /// Random PBKDF2 salt.
        salt: [u8; SALT_LEN],
        /// PBKDF2-HMAC-SHA512 output, 64 bytes.
        hash: [u8; HASH_LEN],
    },
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha512 { .. } => f.write_str("PasswordHash::Sha512(..)"),
            Self::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash::Pbkdf2Sha512({iterations} iterations, ..)")
            }
        }
    }
}

fn sha512_digest(password: &[u8], salt: &[u8; SALT_LEN]) -> [u8; HASH_LEN] {
    let mut h = Sha512::new();
    h.update(password);
    h.update(salt);
    h.finalize().into()
}

fn pbkdf2_digest(password: &[u8], salt: &[u8; SALT_LEN], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

fn decode_fixed<const N: usize>(b64: &str) -> Option<[u8; N]> {
    let bytes = B64.decode(b64.as_bytes()).ok()?;
    bytes.try_into().ok()
}

fn check_iterations(iterations: u32) -> Result<u32, HashError> {
    if (1..=MAX_ITERATIONS).contains(&iterations) {
        Ok(iterations)
    } else {
        Err(HashError::Iterations(iterations.to_string()))
    }
}

impl PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512 of `password` with the given salt (draw it from a CSPRNG) and
    /// iteration count (1..=[`MAX_ITERATIONS`]; [`DEFAULT_ITERATIONS`] matches Mosquitto 2.0).
    pub fn pbkdf2(
        password: impl AsRef<[u8]>,
        salt: [u8; SALT_LEN],
        iterations: u32,
    ) -> Result<Self, HashError> {
        let iterations = check_iterations(iterations)?;
        Ok(Self::Pbkdf2Sha512 {
            iterations,
            salt,
            hash: pbkdf2_digest(password.as_ref(), &salt, iterations),
        })
    }

    /// `$6$`: SHA-512(password ‖ salt). Only for compatibility with Mosquitto 1.6 files.
    pub fn sha512(password: impl AsRef<[u8]>, salt: [u8; SALT_LEN]) -> Self {
        Self::Sha512 {
            salt,
            hash: sha512_digest(password.as_ref(), &salt),
        }
    }

    /// Hashes with the algorithm `mosquitto_passwd -H` names; `iterations` only applies to
    /// PBKDF2.
    pub fn new(
        algorithm: HashAlgorithm,
        password: impl AsRef<[u8]>,
        salt: [u8; SALT_LEN],
        iterations: u32,
    ) -> Result<Self, HashError> {
        match algorithm {
            HashAlgorithm::Sha512 => Ok(Self::sha512(password, salt)),
            HashAlgorithm::Sha512Pbkdf2 => Self::pbkdf2(password, salt, iterations),
        }
    }

    /// Parses the part after `user:`, e.g. `$7$101$<salt>$<hash>`.
    pub fn parse(s: &str) -> Result<Self, HashError> {
        let Some(rest) = s.strip_prefix('$') else {
            return Err(HashError::NotHashed);
        };
        let mut fields = rest.split('$');
        match fields.next() {
            Some("6") => {
                let shape = "$6$<salt>$<hash>";
                let (Some(salt), Some(hash), None) = (fields.next(), fields.next(), fields.next())
                else {
                    return Err(HashError::Shape(shape));
                };
                Ok(Self::Sha512 {
                    salt: decode_fixed(salt).ok_or(HashError::Salt)?,
                    hash: decode_fixed(hash).ok_or(HashError::Hash)?,
                })
            }
            Some("7") => {
                let shape = "$7$<iterations>$<salt>$<hash>";
                let (Some(iter), Some(salt), Some(hash), None) =
                    (fields.next(), fields.next(), fields.next(), fields.next())
                else {
                    return Err(HashError::Shape(shape));
                };
                let iterations = iter
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_ITERATIONS).contains(n))
                    .ok_or_else(|| HashError::Iterations(iter.to_owned()))?;
                Ok(Self::Pbkdf2Sha512 {
                    iterations,
                    salt: decode_fixed(salt).ok_or(HashError::Salt)?,
                    hash: decode_fixed(hash).ok_or(HashError::Hash)?,
                })
            }
            Some(other) if !other.is_empty() && other.len() <= 16 && !other.contains(' ') => {
                Err(HashError::UnsupportedType(other.to_owned()))
            }
            _ => Err(HashError::NotHashed),
        }
    }

    /// Which algorithm this hash uses.
    pub const fn algorithm(&self) -> HashAlgorithm {
        match self {
            Self::Sha512 { .. } => HashAlgorithm::Sha512,
            Self::Pbkdf2Sha512 { .. } => HashAlgorithm::Sha512Pbkdf2,
        }
    }

    /// Does `password` match? The final comparison is constant-time (`subtle`); the hashing
    /// work before it depends only on the stored parameters, not on the password.
    pub fn verify(&self, password: impl AsRef<[u8]>) -> bool {
        let (computed, stored) = match self {
            Self::Sha512 { salt, hash } => (sha512_digest(password.as_ref(), salt), hash),
            Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => (pbkdf2_digest(password.as_ref(), salt, *iterations), hash),
        };
        computed.ct_eq(stored).into()
    }

    /// The hash as Mosquitto writes it after `user:`, e.g. `$7$101$AAECAwQFBgcICQoL$Xr99...==`.
    pub fn to_hash_string(&self) -> String {
        match self {
            Self::Sha512 { salt, hash } => {
                format!("$6${}${}", B64.encode(salt), B64.encode(hash))
            }
            Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => format!("$7${iterations}${}${}", B64.encode(salt), B64.encode(hash)),
        }
    }

    /// A whole password-file line without the trailing newline: `user:$7$...`.
    pub fn to_line(&self, username: &str) -> String {
        format!("{username}:{}", self.to_hash_string())
    }
}

/// Why a user name cannot go into a password file (`is_username_valid` in mosquitto_passwd).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// Empty names cannot be looked up by the broker.
    #[error("user name is empty")]
    Empty,
    /// Longer than an MQTT string can carry.
    #[error("user name must be less than 65536 bytes long")]
    TooLong,
    /// `:` separates the user name from the hash.
    #[error("user name must not contain the ':' character")]
    Colon,
    /// Control characters (including newlines) would break the file.
    #[error("user name must not contain control characters")]
    Control,
    /// Leading or trailing blanks are trimmed when the file is read, so the name would
    /// never match.
    #[error("user name must not start or end with a space or tab")]
    Blank,
    /// A line starting with `#` is a comment, so the user would silently vanish.
    #[error("user name must not start with '#': the line would be read as a comment")]
    Hash,
}

/// Checks a user name for `tern passwd`, with mosquitto_passwd's rules plus the blanks that
/// the broker would trim away.
pub fn validate_username(username: &str) -> Result<(), UsernameError> {
    if username.is_empty() {
        return Err(UsernameError::Empty);
    }
    if username.len() > MAX_USERNAME_LEN {
        return Err(UsernameError::TooLong);
    }
    if username.contains(':') {
        return Err(UsernameError::Colon);
    }
    if username.chars().any(char::is_control) {
        return Err(UsernameError::Control);
    }
    if username.trim_matches([' ', '\t']) != username {
        return Err(UsernameError::Blank);
    }
    if username.starts_with('#') {
        // Found by fuzzing (fuzz/regressions F1).
        return Err(UsernameError::Hash);
    }
    Ok(())
}

/// What is wrong with one line of a password file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// Neither a comment, a blank line nor `user:hash`.
    NoColon,
    /// `:hash` with nothing before the colon.
    EmptyUsername,
    /// A user name longer than [`MAX_USERNAME_LEN`].
    UsernameTooLong,
    /// `user:` with nothing after the colon; the user is refused.
    MissingHash {
        /// The refused user.
        user: String,
    },
    /// The hash is not valid; the user is refused.
    BadHash {
        /// The refused user.
        user: String,
        /// What is wrong with the hash.
        reason: HashError,
    },
    /// A second valid line for a user; this later line wins, as in Mosquitto 2.0.
    Duplicate {
        /// The user listed twice.
        user: String,
        /// Line of the earlier entry.
        first_line: usize,
    },
}

/// One problem in a password file, with its location. Displays as
/// `FILE:LINE: <what is wrong>. <what to do>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The password file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: LineErrorKind,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.path.display(), self.line)?;
        let file = self.path.display();
        match &self.kind {
            LineErrorKind::NoColon => write!(
                f,
                "line is not \"user:hash\". Fix or remove it; `tern passwd {file} USER` writes a valid line"
            ),
            LineErrorKind::EmptyUsername => {
                write!(f, "empty user name before ':'. Fix or remove the line")
            }
            LineErrorKind::UsernameTooLong => write!(
                f,
                "user name is longer than 65535 bytes. Fix or remove the line"
            ),
            LineErrorKind::MissingHash { user } => write!(
                f,
                "user \"{user}\" has no password hash and is refused. Set one with `tern passwd {file} {user}`"
            ),
            LineErrorKind::BadHash {
                user,
                reason: HashError::NotHashed,
            } => write!(
                f,
                "the password of user \"{user}\" is not hashed, so the user is refused. Hash the file with `tern passwd -U {file}`"
            ),
            LineErrorKind::BadHash { user, reason } => write!(
                f,
                "invalid password hash for user \"{user}\" ({reason}), so the user is refused. Reset it with `tern passwd {file} {user}`"
            ),
            LineErrorKind::Duplicate { user, first_line } => write!(
                f,
                "user \"{user}\" is already listed on line {first_line}; this later line wins, as in Mosquitto. Remove one of the two lines"
            ),
        }
    }
}

impl std::error::Error for LineError {}

/// One password-file line, classified.
enum Parsed<'a> {
    /// Comment or blank line.
    Skip,
    /// `user:hash` split and trimmed.
    Entry { user: &'a str, hash: &'a str },
    /// No `:` in a non-comment line.
    NoColon,
}

fn classify(raw: &str) -> Parsed<'_> {
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    if line.starts_with('#') || line.trim().is_empty() {
        return Parsed::Skip;
    }
    match line.split_once(':') {
        // Mosquitto splits with strtok(":"), so the hash ends at a second ':'.
        Some((user, rest)) => {
            let hash = rest.split(':').next().unwrap_or_default();
            Parsed::Entry {
                user: user.trim_matches([' ', '\t']),
                hash: hash.trim_matches([' ', '\t']),
            }
        }
        None => Parsed::NoColon,
    }
}

/// A password file, read. Never fails as a whole: bad lines are in [`PasswordFile::errors`].
#[derive(Clone)]
pub struct PasswordFile {
    path: PathBuf,
    users: HashMap<String, PasswordHash>,
    errors: Vec<LineError>,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("path", &self.path)
            .field("users", &self.users.len())
            .field("errors", &self.errors)
            .finish()
    }
}

/// Hash checked when the user is unknown so that a wrong user name costs the same time as a
/// wrong password (no user enumeration by timing).
fn dummy_hash() -> PasswordHash {
    PasswordHash::Pbkdf2Sha512 {
        iterations: DEFAULT_ITERATIONS,
        salt: [0; SALT_LEN],
        hash: [0; HASH_LEN],
    }
}

impl PasswordFile {
    /// Reads the contents of a password file; `path` is only used in messages.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Self {
        let path = path.into();
        let mut users: HashMap<String, PasswordHash> = HashMap::new();
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        let mut refused: Vec<String> = Vec::new();
        let mut errors = Vec::new();
        let mut err = |line: usize, kind| {
            errors.push(LineError {
                path: path.clone(),
                line,
                kind,
            });
        };
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let (user, hash) = match classify(raw) {
                Parsed::Skip => continue,
                Parsed::NoColon => {
                    err(line, LineErrorKind::NoColon);
                    continue;
                }
                Parsed::Entry { user, hash } => (user, hash),
            };
            if user.is_empty() {
                err(line, LineErrorKind::EmptyUsername);
                continue;
            }
            if user.len() > MAX_USERNAME_LEN {
                err(line, LineErrorKind::UsernameTooLong);
                continue;
            }
            if hash.is_empty() {
                err(
                    line,
                    LineErrorKind::MissingHash {
                        user: user.to_owned(),
                    },
                );
                refused.push(user.to_owned());
                continue;
            }
            match PasswordHash::parse(hash) {
                Ok(parsed) => {
                    if let Some(&first_line) = first_seen.get(user) {
                        err(
                            line,
                            LineErrorKind::Duplicate {
                                user: user.to_owned(),
                                first_line,
                            },
                        );
                    } else {
                        first_seen.insert(user.to_owned(), line);
                    }
                    users.insert(user.to_owned(), parsed);
                }
                Err(reason) => {
                    err(
                        line,
                        LineErrorKind::BadHash {
                            user: user.to_owned(),
                            reason,
                        },
                    );
                    refused.push(user.to_owned());
                }
            }
        }
        for user in refused {
            users.remove(&user);
        }
        Self {
            path,
            users,
            errors,
        }
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Problems found while reading, in line order. The broker logs each once.
    pub fn errors(&self) -> &[LineError] {
        &self.errors
    }

    /// The hash for `username`, if the user is present and not refused.
    pub fn get(&self, username: &str) -> Option<&PasswordHash> {
        self.users.get(username)
    }

    /// Number of users that can log in.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when no user can log in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Does `username` exist with this `password`? An unknown user costs one PBKDF2 run with
    /// [`DEFAULT_ITERATIONS`] so that timing does not reveal which names exist.
    pub fn verify(&self, username: &str, password: impl AsRef<[u8]>) -> bool {
        match self.users.get(username) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = dummy_hash().verify(password);
                false
            }
        }
    }
}

/// Why `tern passwd` could not edit a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// `-D` for a user that is not in the file (mosquitto_passwd: exit code 1 with a warning).
    #[error("user {0} not found in password file")]
    UserNotFound(String),
    /// The user name cannot be written to a password file.
    #[error("{0}")]
    Username(#[from] UsernameError),
    /// `-U` met a line it cannot convert; nothing was changed.
    #[error("line {line} is not \"user:password\"; fix it, then run the conversion again")]
    Corrupt {
        /// 1-based line number.
        line: usize,
    },
    /// Hashing failed (iteration count out of range).
    #[error("{0}")]
    Hash(#[from] HashError),
}

/// Iterates lines keeping their original text (without the newline).
fn lines_of(contents: &str) -> impl Iterator<Item = &str> {
    contents.lines()
}

fn finish(mut out: String) -> String {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Adds `username` or replaces its password: the first line for the user is replaced in
/// place, later lines for the same user are dropped (so one line remains), and a new user
/// is appended at the end. Comments, blank lines and lines tern cannot parse are kept as
/// they are (mosquitto_passwd 2.0.11 stops at the first comment or blank line and drops the
/// rest of the file; tern does not).
pub fn set_user(contents: &str, username: &str, hash: &PasswordHash) -> Result<String, EditError> {
    validate_username(username)?;
    let mut out = String::with_capacity(contents.len() + 160);
    let mut replaced = false;
    for raw in lines_of(contents) {
        if let Parsed::Entry { user, .. } = classify(raw)
            && user == username
        {
            if !replaced {
                out.push_str(&hash.to_line(username));
                out.push('\n');
                replaced = true;
            }
            continue;
        }
        out.push_str(raw);
        out.push('\n');
    }
    if !replaced {
        out.push_str(&hash.to_line(username));
        out.push('\n');
    }
    Ok(finish(out))
}

/// Removes every line for `username` (as mosquitto_passwd -D does). Fails with
/// [`EditError::UserNotFound`] when there is none.
pub fn delete_user(contents: &str, username: &str) -> Result<String, EditError> {
    let mut out = String::with_capacity(contents.len());
    let mut found = false;
    for raw in lines_of(contents) {
        if let Parsed::Entry { user, .. } = classify(raw)
            && user == username
        {
            found = true;
            continue;
        }
        out.push_str(raw);
        out.push('\n');
    }
    if found {
        Ok(finish(out))
    } else {
        Err(EditError::UserNotFound(username.to_owned()))
    }
}

/// Result of [`convert_plain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// The new file contents.
    pub contents: String,
    /// How many plain passwords were hashed.
    pub hashed: usize,
    /// How many lines already held a `$6$`/`$7$` hash and were kept as they were
    /// (mosquitto_passwd -U would hash the hash again, locking the user out).
    pub already_hashed: usize,
}

/// `-U`: hashes every plain `user:password` line. `hash` is called once per plain password
/// and returns its hash (the CLI draws a fresh salt each time). Comments and blank lines are
/// kept; lines that already hold a valid hash are kept unchanged. A line that is not
/// `user:password` stops the conversion with [`EditError::Corrupt`] and nothing is written.
pub fn convert_plain(
    contents: &str,
    mut hash: impl FnMut(&str) -> Result<PasswordHash, HashError>,
) -> Result<Converted, EditError> {
    let mut out = String::with_capacity(contents.len() * 2);
    let mut hashed = 0;
    let mut already_hashed = 0;
    for (idx, raw) in lines_of(contents).enumerate() {
        match classify(raw) {
            Parsed::Skip => {
                out.push_str(raw);
                out.push('\n');
            }
            Parsed::NoColon => return Err(EditError::Corrupt { line: idx + 1 }),
            Parsed::Entry { user, hash: pass } => {
                if user.is_empty() || pass.is_empty() {
                    return Err(EditError::Corrupt { line: idx + 1 });
                }
                if PasswordHash::parse(pass).is_ok() {
                    already_hashed += 1;
                    out.push_str(raw);
                } else {
                    if user.starts_with('#') {
                        // Mosquitto reads "  #x:..." as user "#x" but "#x:..." as a comment:
                        // keep the indentation so the user does not vanish (fuzz finding F1).
                        out.push(' ');
                    }
                    out.push_str(&hash(pass)?.to_line(user));
                    hashed += 1;
                }
                out.push('\n');
            }
        }
    }
    Ok(Converted {
        contents: finish(out),
        hashed,
        already_hashed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    /// Reference vectors, verified against Debian's Mosquitto 2.0.11.
    const V7: &str = "alice:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==";
    const V6: &str = "alice:$6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==";

    #[test]
    fn reference_vectors_are_reproduced_byte_for_byte() {
        let h7 = PasswordHash::pbkdf2("secret", SALT, 101).unwrap();
        assert_eq!(h7.to_line("alice"), V7);
        let h6 = PasswordHash::sha512("secret", SALT);
        assert_eq!(h6.to_line("alice"), V6);
    }

    #[test]
    fn reference_vectors_verify() {
        let f = PasswordFile::parse("/p", &format!("{V7}\n"));
        assert!(f.verify("alice", "secret"));
        assert!(!f.verify("alice", "Secret"));
        assert!(!f.verify("alice", ""));
        let f = PasswordFile::parse("/p", V6);
        assert!(f.verify("alice", b"secret"));
        assert!(!f.verify("alice", "secret "));
        assert!(f.errors().is_empty());
    }

    #[test]
    fn parse_round_trips() {
        for line in [V6, V7] {
            let (_, hash) = line.split_once(':').unwrap();
            assert_eq!(PasswordHash::parse(hash).unwrap().to_hash_string(), hash);
        }
    }

    #[test]
    fn real_line_from_issue_2988_shape_and_debug_hides_hash() {
        let h = PasswordHash::pbkdf2("x", SALT, 5).unwrap();
        assert_eq!(
            format!("{h:?}"),
            "PasswordHash::Pbkdf2Sha512(5 iterations, ..)"
        );
        assert_eq!(h.algorithm(), HashAlgorithm::Sha512Pbkdf2);
    }

    #[test]
    fn hash_errors() {
        assert_eq!(PasswordHash::parse("secret"), Err(HashError::NotHashed));
        assert_eq!(
            PasswordHash::parse("$argon2id$v=19$x"),
            Err(HashError::UnsupportedType("argon2id".into()))
        );
        assert_eq!(
            PasswordHash::parse("$6$AAECAwQFBgcICQoL"),
            Err(HashError::Shape("$6$<salt>$<hash>"))
        );
        assert_eq!(
            PasswordHash::parse("$7$0$AAECAwQFBgcICQoL$AA=="),
            Err(HashError::Iterations("0".into()))
        );
        assert_eq!(
            PasswordHash::parse("$7$x$AAECAwQFBgcICQoL$AA=="),
            Err(HashError::Iterations("x".into()))
        );
        assert_eq!(
            PasswordHash::parse("$7$101$AAAA$AA=="),
            Err(HashError::Salt)
        );
        assert_eq!(
            PasswordHash::parse("$7$101$AAECAwQFBgcICQoL$AA=="),
            Err(HashError::Hash)
        );
        assert_eq!(
            PasswordHash::pbkdf2("x", SALT, 0),
            Err(HashError::Iterations("0".into()))
        );
        assert_eq!(
            PasswordHash::pbkdf2("x", SALT, MAX_ITERATIONS + 1),
            Err(HashError::Iterations("10000001".into()))
        );
    }

    #[test]
    fn base64_without_padding_is_accepted() {
        let (_, hash) = V7.split_once(':').unwrap();
        let unpadded = hash.trim_end_matches('=');
        assert!(PasswordHash::parse(unpadded).unwrap().verify("secret"));
    }

    #[test]
    fn bad_line_refuses_that_user_only_and_reports_path_and_line() {
        let text = format!(
            "# comment\n\nbob:$7$101$AAAA$BBBB\n{V7}\ncarol:plain\ndave\neve:\n:x\n{}\n",
            V6.replace("alice", "frank")
        );
        let f = PasswordFile::parse("/etc/tern/pw", &text);
        assert!(f.verify("alice", "secret"));
        assert!(f.verify("frank", "secret"));
        assert!(!f.verify("bob", "x"));
        assert!(!f.verify("carol", "plain"));
        assert!(!f.verify("eve", ""));
        assert_eq!(f.len(), 2);
        let msgs: Vec<String> = f.errors().iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "/etc/tern/pw:3: invalid password hash for user \"bob\" (the salt is not 12 bytes of base64), so the user is refused. Reset it with `tern passwd /etc/tern/pw bob`",
                "/etc/tern/pw:5: the password of user \"carol\" is not hashed, so the user is refused. Hash the file with `tern passwd -U /etc/tern/pw`",
                "/etc/tern/pw:6: line is not \"user:hash\". Fix or remove it; `tern passwd /etc/tern/pw USER` writes a valid line",
                "/etc/tern/pw:7: user \"eve\" has no password hash and is refused. Set one with `tern passwd /etc/tern/pw eve`",
                "/etc/tern/pw:8: empty user name before ':'. Fix or remove the line",
            ]
        );
    }

    #[test]
    fn a_bad_line_refuses_the_user_even_next_to_a_good_one() {
        for text in [
            format!("{V7}\nalice:$7$101$AAAA$BBBB\n"),
            format!("alice:$7$101$AAAA$BBBB\n{V7}\n"),
        ] {
            let f = PasswordFile::parse("/p", &text);
            assert!(!f.verify("alice", "secret"), "{text}");
            assert!(f.get("alice").is_none());
        }
    }

    #[test]
    fn duplicate_user_later_line_wins_like_mosquitto_2_0_11() {
        let first = PasswordHash::pbkdf2("first", SALT, 2)
            .unwrap()
            .to_line("bob");
        let second = PasswordHash::pbkdf2("second", SALT, 2)
            .unwrap()
            .to_line("bob");
        let f = PasswordFile::parse("/p", &format!("{first}\n{second}\n"));
        assert!(!f.verify("bob", "first"));
        assert!(f.verify("bob", "second"));
        assert_eq!(
            f.errors()[0].to_string(),
            "/p:2: user \"bob\" is already listed on line 1; this later line wins, as in Mosquitto. Remove one of the two lines"
        );
    }

    #[test]
    fn blanks_around_user_and_hash_and_crlf_are_trimmed() {
        let (_, hash) = V7.split_once(':').unwrap();
        let f = PasswordFile::parse("/p", &format!(" alice \t: {hash} \r\n"));
        assert!(f.verify("alice", "secret"));
    }

    #[test]
    fn unknown_user_is_refused() {
        let f = PasswordFile::parse("/p", V7);
        assert!(!f.verify("mallory", "secret"));
        assert!(PasswordFile::parse("/p", "").is_empty());
    }

    #[test]
    fn username_rules() {
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(validate_username("a:b"), Err(UsernameError::Colon));
        assert_eq!(validate_username("a\nb"), Err(UsernameError::Control));
        assert_eq!(validate_username(" a"), Err(UsernameError::Blank));
        assert_eq!(
            validate_username(&"x".repeat(65_536)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(validate_username("alice smith"), Ok(()));
    }

    #[test]
    fn set_user_replaces_first_drops_duplicates_keeps_comments_appends_new() {
        let h = PasswordHash::sha512("n", SALT);
        let before = "# users\nalice:old1\n\nbob:x\nalice:old2\ngarbage";
        let after = set_user(before, "alice", &h).unwrap();
        assert_eq!(
            after,
            format!("# users\n{}\n\nbob:x\ngarbage\n", h.to_line("alice"))
        );
        let added = set_user(&after, "carol", &h).unwrap();
        assert!(added.ends_with(&format!("garbage\n{}\n", h.to_line("carol"))));
        assert_eq!(
            set_user("", "a:b", &h),
            Err(EditError::Username(UsernameError::Colon))
        );
        assert_eq!(set_user("", "dan", &h).unwrap(), h.to_line("dan") + "\n");
    }

    #[test]
    fn delete_user_removes_all_lines_or_reports_missing() {
        assert_eq!(
            delete_user("a:1\n# c\nb:2\na:3\n", "a").unwrap(),
            "# c\nb:2\n"
        );
        let err = delete_user("a:1\n", "nobody").unwrap_err();
        assert_eq!(err.to_string(), "user nobody not found in password file");
    }

    #[test]
    fn convert_plain_hashes_plain_keeps_hashes_and_comments() {
        let mut n = 0u8;
        let conv = convert_plain(&format!("# c\nbob:pw\n{V7}\n"), |p| {
            n += 1;
            Ok(PasswordHash::sha512(p, [n; 12]))
        })
        .unwrap();
        assert_eq!(conv.hashed, 1);
        assert_eq!(conv.already_hashed, 1);
        let f = PasswordFile::parse("/p", &conv.contents);
        assert!(f.verify("bob", "pw"));
        assert!(f.verify("alice", "secret"));
        assert!(conv.contents.starts_with("# c\nbob:$6$"));
        assert_eq!(
            convert_plain("bob\n", |p| Ok(PasswordHash::sha512(p, SALT))),
            Err(EditError::Corrupt { line: 1 })
        );
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            HashAlgorithm::from_name("sha512"),
            Some(HashAlgorithm::Sha512)
        );
        assert_eq!(
            HashAlgorithm::from_name("sha512-pbkdf2"),
            Some(HashAlgorithm::Sha512Pbkdf2)
        );
        assert_eq!(HashAlgorithm::from_name("md5"), None);
        assert_eq!(HashAlgorithm::Sha512Pbkdf2.to_string(), "sha512-pbkdf2");
    }

    /// A line written by Debian's real `mosquitto_passwd -b` must verify here. This test
    /// FAILS (it does not skip) when the tool is missing.
    #[test]
    fn verifies_a_line_written_by_real_mosquitto_passwd() {
        use std::process::Command;
        let dir = std::env::temp_dir().join(format!("tern-conf-passwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        for (args, user) in [
            (vec!["-c", "-b"], "alice"),
            (vec!["-H", "sha512", "-b"], "bob"),
            (vec!["-I", "1000", "-b"], "carol"),
        ] {
            let status = Command::new("mosquitto_passwd")
                .args(&args)
                .arg(&file)
                .arg(user)
                .arg("s3cret pass")
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run mosquitto_passwd ({e}); install Debian's `mosquitto` package (apt-get install mosquitto) to run this test"
                    )
                });
            assert!(status.success(), "mosquitto_passwd {args:?} failed");
        }
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let f = PasswordFile::parse(&file, &text);
        assert!(f.errors().is_empty(), "{:?}", f.errors());
        for user in ["alice", "bob", "carol"] {
            assert!(f.verify(user, "s3cret pass"), "{user}: {text}");
            assert!(!f.verify(user, "s3cret"), "{user}");
        }
        assert_eq!(
            f.get("bob").map(PasswordHash::algorithm),
            Some(HashAlgorithm::Sha512)
        );
        assert!(matches!(
            f.get("carol"),
            Some(PasswordHash::Pbkdf2Sha512 {
                iterations: 1000,
                ..
            })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let f = PasswordFile::parse("/p", &text);
            let _ = f.verify("a", "b");
        }

        #[test]
        fn parse_never_panics_on_hash_like_lines(
            user in "[a-z:# ]{0,5}",
            fields in proptest::collection::vec("[A-Za-z0-9+/=$]{0,90}", 0..6),
        ) {
            let line = format!("{user}:${}", fields.join("$"));
            let _ = PasswordFile::parse("/p", &line);
            let _ = convert_plain(&line, |p| Ok(PasswordHash::sha512(p, [0; 12])));
            let _ = set_user(&line, "a", &PasswordHash::sha512("x", [0; 12]));
            let _ = delete_user(&line, "a");
        }
    }
}
