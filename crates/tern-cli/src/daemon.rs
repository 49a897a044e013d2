//! `-d`: run in the background. Instead of fork() (unsafe after threads exist), tern starts
//! itself again without `-d` in a new session, with its output detached, and the parent exits.

use anyhow::Context;

pub fn detach() -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("finding the tern executable")?;
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "-d" && a != "--daemon")
        .collect();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
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
