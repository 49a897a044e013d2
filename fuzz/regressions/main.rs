//! Problems the fuzz targets found, as minimal reproducers, and every committed seed replayed
//! through its target's checks. Runs on stable:
//!
//! ```text
//! cargo test --manifest-path fuzz/Cargo.toml               # fixed findings and seeds
//! cargo test --manifest-path fuzz/Cargo.toml -- --ignored  # open findings: these fail today
//! ```
//!
//! An open finding is an `#[ignore]`d test asserting the behaviour we want; the library's
//! owner removes the `#[ignore]` with the fix (and the matching relaxation in `src/`, marked
//! with the finding's number). Each finding is described in `regressions/notes.md`.
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

/// A target's entry point.
type Run = fn(&[u8]);

/// Every seed of every target still passes its checks (a fix must not break a seed).
#[test]
fn committed_seeds_pass_their_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Run); 8] = [
        ("decode", tern_fuzz::codec::run_decode),
        ("framer_split", tern_fuzz::codec::run_framer_split),
        ("conf", tern_fuzz::conf::run),
        ("passwd", tern_fuzz::passwd::run),
        ("acl", tern_fuzz::acl::run),
        ("topic", tern_fuzz::topic::run),
        ("routing", tern_fuzz::routing::run),
        ("alias", tern_fuzz::alias::run),
    ];
    for (target, run) in targets {
        let mut n = 0;
        for entry in fs::read_dir(root.join(target)).expect("corpus directory") {
            let path = entry.expect("corpus entry").path();
            run(&fs::read(&path).expect("seed"));
            n += 1;
        }
        assert!(n > 0, "no seeds for {target}");
    }
}

/// F1: `tern passwd` accepts a user name starting with `#` and writes a line that the
/// password file reader takes for a comment, so the user silently cannot log in.
mod f1_username_starting_with_hash {
    use tern_conf::passwd::{PasswordFile, PasswordHash, convert_plain, set_user};

    const SALT: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    /// Fixed: a user name starting with `#` is refused, since its line would read back as a
    /// comment.
    #[test]
    fn set_user_refuses_a_name_the_reader_would_skip() {
        let hash = PasswordHash::sha512("secret", SALT);
        let err = set_user("", "#admin", &hash).expect_err("a leading # is refused");
        assert!(err.to_string().contains("'#'"), "{err}");
        let _ = PasswordFile::parse("/etc/tern/passwd", "");
    }

    #[test]
    fn convert_plain_keeps_an_indented_hash_user() {
        // "  #x:pw" is not a comment for the reader (the `#` is not the first character), so
        // -U hashes it, but writes it back unindented as "#x:$6$...", which is a comment.
        let before = PasswordFile::parse("/p", "  #x:pw\n");
        assert_eq!(
            before.errors().len(),
            1,
            "read as user \"#x\" with a plain password"
        );
        let conv = convert_plain("  #x:pw\n", |p| Ok(PasswordHash::sha512(p, SALT)))
            .expect("convert_plain");
        assert_eq!(conv.hashed, 1);
        let after = PasswordFile::parse("/p", &conv.contents);
        assert!(
            after.get("#x").is_some(),
            "user \"#x\" lost by convert_plain: {:?}",
            conv.contents
        );
    }
}

/// N1: `validate_filter` accepts a shared subscription whose filter itself starts with
/// `$share/`, and the filter `split_shared` then hands out is refused by `validate_filter`
/// (`$share/b`) or is read as a second shared subscription (`$share/h/x`).
mod n1_nested_share {
    use tern_codec::topic::{split_shared, validate_filter};

    #[test]
    fn inner_filter_of_a_valid_shared_subscription_is_valid() {
        for f in [
            "$share/g/$share/b",
            "$share/g/$share/h/x",
            "$share/g/$share//#",
        ] {
            if validate_filter(f).is_ok() {
                let (_, inner) = split_shared(f).expect("shared");
                assert!(
                    validate_filter(inner).is_ok() && split_shared(inner).is_none(),
                    "{f:?} is a valid filter but its inner filter {inner:?} is {:?} / {:?}",
                    validate_filter(inner),
                    split_shared(inner)
                );
            }
        }
    }
}

/// N3: a 5.0 PUBLISH that carries its topic only as a topic alias is encoded for 3.1.1 as a
/// PUBLISH with an empty topic name, which 3.1.1 refuses.
mod n3_alias_only_publish_for_v311 {
    use tern_codec::{Packet, ProtocolVersion, decode};

    #[test]
    fn encode_refuses_or_decodes() {
        let bytes = [0x30, 6, 0, 0, 3, 0x23, 0, 1]; // QoS 0, topic "", topic alias 1
        let Ok(Some((p @ Packet::Publish(_), 8))) = decode(&bytes, ProtocolVersion::V5, 1024)
        else {
            panic!("the 5.0 packet decodes");
        };
        let mut out = [0u8; 16];
        if let Ok(n) = p.encode(ProtocolVersion::V311, &mut out) {
            let again = decode(&out[..n], ProtocolVersion::V311, 1024);
            assert!(
                matches!(again, Ok(Some(_))),
                "encode(V311) wrote {:02x?}, which decode(V311) answers with {again:?}",
                &out[..n]
            );
        }
    }
}
