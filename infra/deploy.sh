#!/usr/bin/env bash
# Builds every function with cargo-lambda and deploys template.yaml with AWS SAM.
# Needs: AWS credentials, `pip install aws-sam-cli cargo-lambda`, and for arm64 (the default)
# the aarch64-unknown-linux-gnu Rust target (`rustup target add aarch64-unknown-linux-gnu`).
#
#   infra/deploy.sh                         # guided the first time: stack name, region, secret ARN
#   infra/deploy.sh --parameter-overrides ProviderSecretArn=arn:aws:secretsmanager:...
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/lambda-build-env.sh
sam build --beta-features
if [ -f samconfig.toml ]; then
  sam deploy "$@"
else
  sam deploy --guided --capabilities CAPABILITY_IAM "$@"
fi
sam list stack-outputs --output table 2>/dev/null || true
