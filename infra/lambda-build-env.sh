# How the deployable functions are built, sourced by infra/deploy.sh (SAM's build) and by
# `make bench ARGS=--lambda`. Size comes first: the zip is what a cold start downloads.
#
# SAM's rust-cargolambda builder runs `cargo lambda build --release` in each function's folder
# (its CodeUri), so each carries only its parts; these make that release build the workspace's
# `lambda` profile: optimised for size, fat LTO, one codegen unit, and a panic aborts. Lambda
# gives each invocation an environment of its own, so a panic that aborts ends only the
# invocation it happened in, as catching it would; what is lost is the run's error event (the
# client's stream ends instead) and the run being recorded failed at once rather than once its
# lease runs out (docs/deploying.md). The unwind tables and landing pads are 15% of a zip.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_STRIP=true
# A position-dependent executable: Lambda's glibc (2.34 on provided.al2023) is older than packed
# relocations, and a position-independent one carries 1.7 MB of plain ones (250 KB of each zip).
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C relocation-model=static" \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C relocation-model=static"
