"""Uploads a built OpenGPTs UI to the stack's UI bucket and refreshes CloudFront.

The UI's code is not ours to ship: point this at your own build (e.g. opengpts' `frontend/`
after `yarn build`, its `dist/` folder). Mirrors the folder: new and changed files go up with
their content type, files gone from the build are deleted. HTML is served `no-cache` (a new
deploy shows at once), hashed assets under `assets/` for a year; then `/*` is invalidated.

    scripts/upload-ui.sh BUILD_DIR --stack STACK_NAME
    scripts/upload-ui.sh BUILD_DIR --bucket BUCKET --distribution DISTRIBUTION_ID
"""

import argparse
import hashlib
import mimetypes
import os
import sys
import time

import boto3


def cache_control(key):
    if key.endswith(".html"):
        return "no-cache"
    if key.startswith("assets/"):
        return "public, max-age=31536000, immutable"
    return "public, max-age=3600"


def stack_outputs(session, endpoint, stack):
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    found = {output["OutputKey"]: output["OutputValue"] for output in outputs}
    if "UiBucketName" not in found:
        sys.exit(f"stack {stack} has no UI bucket: deploy it with UiHosting=cloudfront")
    return found["UiBucketName"], found["UiDistributionId"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--stack")
    parser.add_argument("--bucket")
    parser.add_argument("--distribution")
    parser.add_argument("--endpoint-url", help="an AWS emulator (tests)")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.build_dir, "index.html")):
        sys.exit(f"{args.build_dir} has no index.html: build the UI first")
    session = boto3.session.Session()
    if args.stack:
        bucket, distribution = stack_outputs(session, args.endpoint_url, args.stack)
    elif args.bucket and args.distribution:
        bucket, distribution = args.bucket, args.distribution
    else:
        sys.exit("name the stack (--stack), or the bucket and distribution")
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    existing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            existing[item["Key"]] = item["ETag"].strip('"')

    uploaded = unchanged = 0
    wanted = set()
    for folder, _, files in os.walk(args.build_dir):
        for name in files:
            path = os.path.join(folder, name)
            key = os.path.relpath(path, args.build_dir).replace(os.sep, "/")
            wanted.add(key)
            with open(path, "rb") as file:
                body = file.read()
            if existing.get(key) == hashlib.md5(body).hexdigest():
                unchanged += 1
                continue
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache_control(key))
            uploaded += 1
    stale = sorted(set(existing) - wanted)
    for start in range(0, len(stale), 1000):
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})

    # CloudFront is global; its API is signed for us-east-1.
    cloudfront = session.client("cloudfront", endpoint_url=args.endpoint_url, region_name="us-east-1")
    invalidation = cloudfront.create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time())},
    )
    print(
        f"uploaded {uploaded}, unchanged {unchanged}, deleted {len(stale)} to s3://{bucket}; "
        f"invalidation {invalidation['Invalidation']['Id']} on {distribution}"
    )


if __name__ == "__main__":
    main()
