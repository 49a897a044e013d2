//! `-d`: run in the background. Instead of fork() (unsafe after threads exist), tern starts
//! itself again in a new session, with its output detached, and the parent exits. The
//! caller has already loaded and checked the configuration, so a mistake in it is reported
//! by the parent (non-zero exit) instead of being lost with the detached process's output.
//!
//! The child's command line is rebuilt from the parsed arguments, never edited from argv:
//! removing "-d" from argv missed combined flags (`-vd`), and such a child detached again,
//! forever.

use std::ffi::OsString;

use anyhow::Context;

use crate::broker::BrokerArgs;

/// The detached broker's arguments: `args` without `-d`.
pub fn child_args(args: &BrokerArgs) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["broker".into()];
    if let Some(c) = &args.config {
        v.push("-c".into());
        v.push(c.clone().into_os_string());
    }
    for p in &args.port {
        v.push("-p".into());
        v.push(p.to_string().into());
    }
    if args.verbose {
        v.push("-v".into());
    }
    if args.quiet {
        v.push("-q".into());
    }
    v
}

pub fn detach(args: &BrokerArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("finding the tern executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(child_args(args))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .context("starting the broker in the background")?;
    println!(
        "tern: broker running in the background (pid {})",
        child.id()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: BrokerArgs,
    }

    #[test]
    fn child_never_gets_the_daemon_flag_even_when_combined() {
        for argv in [
            &["t", "-vd", "-c", "x.conf"][..],
            &["t", "-dv", "-p", "1884"][..],
            &["t", "-qd", "--config-file", "y.conf"][..],
            &["t", "--daemon", "-v"][..],
        ] {
            let t = T::try_parse_from(argv).expect("parses");
            assert!(t.a.daemon);
            let child = child_args(&t.a);
            let again = T::try_parse_from(
                std::iter::once(OsString::from("t")).chain(child.into_iter().skip(1)),
            )
            .expect("child arguments parse");
            assert!(!again.a.daemon, "{argv:?}: the child must not detach again");
            assert_eq!(again.a.verbose, t.a.verbose);
            assert_eq!(again.a.quiet, t.a.quiet);
            assert_eq!(again.a.port, t.a.port);
            assert_eq!(again.a.config, t.a.config);
        }
    }
}
