//! The local server's binary, built for the machine that builds it, packs its relocations
//! (`DT_RELR`). As a position-independent executable it would otherwise carry 2 MiB of them,
//! which the loader reads at every start and which stay resident: 2 MiB of the 14 a fresh server
//! holds. glibc applies packed relocations from 2.36 on, so only a build for this machine's own
//! glibc, 2.36 or later, with the default linker (not a cross build, as `cargo lambda build` is)
//! packs them.

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    let default_linker = std::env::var_os("RUSTC_LINKER").is_none();
    let target_gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if native && default_linker && target_gnu && cfg!(target_env = "gnu") && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
    let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

#[cfg(not(target_env = "gnu"))]
fn glibc_at_least(_major: u32, _minor: u32) -> bool {
    false
}
