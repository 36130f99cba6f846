//! How the local server's binary is linked, when it is built for the machine that builds it with
//! the default linker (not a cross build, as `cargo lambda build` is):
//! - It packs its relocations (`DT_RELR`). As a position-independent executable it would otherwise
//!   carry 2 MiB of them, which the loader reads at every start and which stay resident: 2 MiB of
//!   the 14 a fresh server held. glibc applies packed relocations from 2.36 on, so only for this
//!   machine's own glibc, 2.36 or later.
//! - Its hot code sits together. The kernel maps a program's code 64 KiB at a time around each
//!   page it runs, so the few functions a request runs, spread over 20 MiB of code, kept 9 MiB of
//!   it resident. `hot-code.txt` (written by `bench/hot_code/trace.sh`) lists the functions the
//!   common paths run, and the linker lays them out first, together. Only rustc's own linker on
//!   x86-64 Linux (LLD, the default since Rust 1.90) reads such a list; names it no longer finds
//!   are skipped, so a stale list costs memory, never a build.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-changed=hot-code.txt");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    // A linker of the user's choosing, in Cargo's config or in the flags, is left as it is.
    let default_linker =
        std::env::var_os("RUSTC_LINKER").is_none() && !var("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    if !(native && default_linker) {
        return;
    }
    if var("CARGO_CFG_TARGET_ENV") == "gnu" && cfg!(target_env = "gnu") && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if var("TARGET") == "x86_64-unknown-linux-gnu" && rustc_links_with_lld(&var("RUSTC")) {
        // The linker reads a copy in this build's own output folder: a target directory shared by
        // clones at other paths (Cargo reuses a build script's output when only the workspace's
        // path changed) would otherwise link against a clone that may be gone.
        let hot_code = Path::new(&var("OUT_DIR")).join("hot-code.txt");
        std::fs::copy(Path::new(&var("CARGO_MANIFEST_DIR")).join("hot-code.txt"), &hot_code)
            .expect("hot-code.txt is copied beside the build's output");
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", hot_code.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether this rustc links x86-64 Linux programs with its own LLD: 1.90 and later do.
fn rustc_links_with_lld(rustc: &str) -> bool {
    let Ok(output) = std::process::Command::new(rustc).arg("--version").output() else { return false };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&output.stdout);
    at_least(version.split_whitespace().nth(1).unwrap_or(""), 1, 90)
}

/// Whether a version such as "1.95.0" or "2.36" is that major.minor or later.
fn at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// Whether the glibc this build script runs on, the machine's own, is that version or later.
#[cfg(target_env = "gnu")]
fn glibc_at_least(major: u32, minor: u32) -> bool {
    extern "C" {
        /// The version, as "2.36".
        fn gnu_get_libc_version() -> *const std::ffi::c_char;
    }
    // SAFETY: glibc returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) }.to_string_lossy().into_owned();
    at_least(&version, major, minor)
}

#[cfg(not(target_env = "gnu"))]
fn glibc_at_least(_major: u32, _minor: u32) -> bool {
    false
}
