#!/usr/bin/env bash
# Builds every function with cargo-lambda and deploys template.yaml with AWS SAM.
# Needs: AWS credentials, `pip install aws-sam-cli cargo-lambda`, and for arm64 (the default)
# the aarch64-unknown-linux-gnu Rust target (`rustup target add aarch64-unknown-linux-gnu`).
#
#   infra/deploy.sh                         # guided the first time: stack name, region, secret ARN
#   infra/deploy.sh --parameter-overrides ProviderSecretArn=arn:aws:secretsmanager:...
set -euo pipefail
cd "$(dirname "$0")/.."
# SAM's rust-cargolambda builder runs `cargo lambda build --release` in each function's folder
# (its CodeUri), so each carries only its parts; these make that release build the workspace's
# `lambda` profile (optimised for size: smaller zips, faster cold starts).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
sam build --beta-features
if [ -f samconfig.toml ]; then
  sam deploy "$@"
else
  sam deploy --guided --capabilities CAPABILITY_IAM "$@"
fi
sam list stack-outputs --output table 2>/dev/null || true
