//! `tern passwd`: manage a Mosquitto-compatible password file, with the flags, refusals,
//! messages and exit codes of `mosquitto_passwd` 2.0. Thin: argument checks, the terminal
//! prompt, the salt, and a safe file write; the formats and edits live in
//! `tern_conf::passwd`.
//!
//! Files are written atomically: the new contents go to a temporary file in the same
//! directory, which is synced and then renamed over the old one, so an error at any point
//! leaves the old file as it was. A new file is created with mode 0600 (owner read/write
//! only): the broker reads it as its own user, so that user must own the file (run
//! `tern passwd` as the broker's user, or `chown` the file to it). An existing file keeps
//! its mode, and its owner when tern runs as root.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tern_conf::passwd::{
    self, DEFAULT_ITERATIONS, EditError, HashAlgorithm, MAX_ITERATIONS, PasswordHash, SALT_LEN,
};

/// Arguments of `tern passwd`, as for `mosquitto_passwd`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Manage a Mosquitto-compatible password file",
    override_usage = "tern passwd [-H sha512|sha512-pbkdf2] [-I iterations] [-c | -D] FILE USER\n       \
                      tern passwd [-H sha512|sha512-pbkdf2] [-I iterations] [-c] -b FILE USER PASSWORD\n       \
                      tern passwd -U FILE"
)]
pub struct PasswdArgs {
    /// Create a new password file, overwriting any existing one.
    #[arg(short = 'c')]
    create: bool,
    /// Batch mode: take the password from the command line (visible to other local users).
    #[arg(short = 'b')]
    batch: bool,
    /// Delete USER rather than adding or updating it.
    #[arg(short = 'D')]
    delete: bool,
    /// Hash the plain `user:password` lines of FILE.
    #[arg(short = 'U')]
    update: bool,
    /// Hash type: sha512-pbkdf2 (default, recommended) or sha512 (Mosquitto 1.6).
    #[arg(short = 'H', value_name = "HASH", default_value = "sha512-pbkdf2")]
    hash: String,
    /// PBKDF2 iteration count (default 101, as Mosquitto 2.0).
    #[arg(short = 'I', value_name = "ITERATIONS", allow_hyphen_values = true)]
    iterations: Option<String>,
    /// The password file.
    file: PathBuf,
    /// The user name.
    user: Option<String>,
    /// The password (only with -b).
    password: Option<String>,
}

const USAGE: &str = "tern passwd manages password files for tern and mosquitto.

Usage: tern passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username
       tern passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username password
       tern passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.
 -I : PBKDF2 iterations (default 101).
 -U : update a plain text password file to use hashed passwords.";

/// Prints a mosquitto_passwd-style error and gives its exit code.
fn fail(msg: impl std::fmt::Display) -> anyhow::Result<i32> {
    eprintln!("Error: {msg}");
    Ok(1)
}

enum Mode {
    Create,
    Delete,
    Update,
    Set,
}

/// Runs `tern passwd`; returns the process exit code (0 on success, 1 on refusal, as
/// mosquitto_passwd). I/O failures are returned as errors with context.
pub fn run(args: PasswdArgs) -> anyhow::Result<i32> {
    // Same refusals, in the same order, as mosquitto_passwd.c main().
    if args.create && args.delete {
        return fail("-c and -D cannot be used together.");
    }
    if args.create && args.update {
        return fail("-c and -U cannot be used together.");
    }
    if args.delete && args.update {
        return fail("-D and -U cannot be used together.");
    }
    if args.delete && args.batch {
        return fail("-b and -D cannot be used together.");
    }
    let Some(algorithm) = HashAlgorithm::from_name(&args.hash) else {
        return fail(format!("Unknown hash type '{}'", args.hash));
    };
    let iterations = match args.iterations.as_deref() {
        None => DEFAULT_ITERATIONS,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n < 1 => return fail("Number of iterations must be > 0."),
            Ok(n) if n > i64::from(MAX_ITERATIONS) => {
                return fail(format!(
                    "Number of iterations must be at most {MAX_ITERATIONS}; each login would cost seconds of CPU."
                ));
            }
            Ok(n) => u32::try_from(n).unwrap_or(DEFAULT_ITERATIONS),
            Err(_) => return fail(format!("Invalid number of iterations '{s}'.")),
        },
    };

    let positional = 1 + usize::from(args.user.is_some()) + usize::from(args.password.is_some());
    let mode = if args.create {
        Mode::Create
    } else if args.delete {
        Mode::Delete
    } else if args.update {
        Mode::Update
    } else {
        Mode::Set
    };
    let wanted = match mode {
        Mode::Update => 1,
        Mode::Delete => 2,
        Mode::Create | Mode::Set => {
            if args.batch {
                3
            } else {
                2
            }
        }
    };
    if positional != wanted {
        let msg = match (&mode, args.batch) {
            (Mode::Create, true) => {
                "-c argument given but password file, username, or password missing."
            }
            (Mode::Create, false) => "-c argument given but password file or username missing.",
            (Mode::Delete, _) => "-D argument given but password file or username missing.",
            (Mode::Update, _) => "-U argument given but password file missing.",
            (Mode::Set, _) => {
                eprintln!("{USAGE}");
                return Ok(1);
            }
        };
        return fail(msg);
    }

    if let Some(user) = &args.user
        && let Err(e) = passwd::validate_username(user)
    {
        return fail(format!("{e}."));
    }
    if args.password.as_ref().is_some_and(|p| p.len() > 65_535) {
        return fail("Password must be less than 65536 characters long.");
    }

    let file = resolve(&args.file);
    let user = args.user.as_deref().unwrap_or_default();
    let hash_new = |password: &str| -> anyhow::Result<PasswordHash> {
        Ok(PasswordHash::new(algorithm, password, salt()?, iterations)?)
    };

    match mode {
        Mode::Create => {
            let Some(password) = password(args.password)? else {
                return Ok(1);
            };
            let contents = passwd::set_user("", user, &hash_new(&password)?)?;
            write_atomic(&file, &contents)?;
        }
        Mode::Set => {
            let Some(old) = read_existing(&file)? else {
                return Ok(1);
            };
            let Some(password) = password(args.password)? else {
                return Ok(1);
            };
            let contents = passwd::set_user(&old, user, &hash_new(&password)?)?;
            write_atomic(&file, &contents)?;
        }
        Mode::Delete => {
            let Some(old) = read_existing(&file)? else {
                return Ok(1);
            };
            match passwd::delete_user(&old, user) {
                Ok(contents) => write_atomic(&file, &contents)?,
                Err(EditError::UserNotFound(u)) => {
                    eprintln!("Warning: User {u} not found in password file.");
                    return Ok(1);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Mode::Update => {
            let Some(old) = read_existing(&file)? else {
                return Ok(1);
            };
            let converted = passwd::convert_plain(&old, |p| {
                let salt = salt().map_err(|_| passwd::HashError::Salt)?;
                PasswordHash::new(algorithm, p, salt, iterations)
            });
            match converted {
                Ok(c) => {
                    write_atomic(&file, &c.contents)?;
                    if c.already_hashed > 0 {
                        eprintln!(
                            "Warning: {} line(s) already held a password hash and were left unchanged.",
                            c.already_hashed
                        );
                    }
                }
                Err(EditError::Corrupt { line }) => {
                    return fail(format!(
                        "Corrupt password file at line {line}; it is not \"user:password\". Nothing was changed."
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(0)
}

/// Follows a symlink so that the rename replaces the real file, not the link
/// (mosquitto_passwd uses realpath() the same way).
fn resolve(file: &Path) -> PathBuf {
    fs::canonicalize(file).unwrap_or_else(|_| file.to_owned())
}

/// A fresh random salt from the operating system.
fn salt() -> anyhow::Result<[u8; SALT_LEN]> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt)
        .map_err(|e| anyhow::anyhow!("cannot get random bytes for the salt: {e}"))?;
    Ok(salt)
}

/// The password from `-b`, or asked twice on the terminal. `None` after printing an error.
fn password(batch: Option<String>) -> anyhow::Result<Option<String>> {
    if let Some(p) = batch {
        return Ok(Some(p));
    }
    let first = rpassword::prompt_password("Password: ")
        .context("cannot read the password from the terminal; use -b to pass it as an argument")?;
    let second = rpassword::prompt_password("Reenter password: ")
        .context("cannot read the password from the terminal; use -b to pass it as an argument")?;
    if first != second {
        eprintln!("Error: Passwords do not match.");
        return Ok(None);
    }
    if first.is_empty() {
        eprintln!("Error: Empty password.");
        return Ok(None);
    }
    if first.len() > 65_535 {
        eprintln!("Error: Password must be less than 65536 characters long.");
        return Ok(None);
    }
    Ok(Some(first))
}

/// The current contents, or `None` after printing mosquitto_passwd's message.
fn read_existing(file: &Path) -> anyhow::Result<Option<String>> {
    match fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(_) => {
                eprintln!(
                    "Error: Password file {} is not valid UTF-8; fix it before editing it.",
                    file.display()
                );
                Ok(None)
            }
        },
        Err(e) => {
            eprintln!(
                "Error: Unable to open password file {}. {e}. Create it with -c.",
                file.display()
            );
            Ok(None)
        }
    }
}

/// Writes `contents` to `file` through a synced temporary file and a rename. The old file is
/// untouched until the rename, and the temporary file is removed on error.
fn write_atomic(file: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "passwd".to_owned());
    let old_meta = fs::metadata(file).ok();
    let mut attempt = 0u32;
    let (tmp_path, mut tmp) = loop {
        let candidate = dir.join(format!(".{name}.tern-{}-{attempt}", std::process::id()));
        match create_private(&candidate) {
            Ok(f) => break (candidate, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot create a temporary file in {}; check that the directory exists and is writable",
                        dir.display()
                    )
                });
            }
        }
    };
    let result = (|| -> anyhow::Result<()> {
        tmp.write_all(contents.as_bytes())?;
        if let Some(meta) = &old_meta {
            keep_owner_and_mode(&tmp, meta)?;
        }
        tmp.sync_all()?;
        fs::rename(&tmp_path, file)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp_path);
        return Err(e).with_context(|| {
            format!(
                "cannot write password file {}; the old file is unchanged",
                file.display()
            )
        });
    }
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn keep_owner_and_mode(tmp: &File, old: &fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    tmp.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))?;
    // Only root can give the file to another owner; otherwise the file becomes ours, which
    // it already was if we could write it.
    let _ = std::os::unix::fs::fchown(tmp, Some(old.uid()), Some(old.gid()));
    Ok(())
}

#[cfg(not(unix))]
fn keep_owner_and_mode(tmp: &File, old: &fs::Metadata) -> std::io::Result<()> {
    tmp.set_permissions(old.permissions())
}
