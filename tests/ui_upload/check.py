"""scripts/upload-ui.sh against the moto emulator's S3 and CloudFront: a build is mirrored to the
bucket with its content types and cache headers, stale files go, the distribution is invalidated,
and a second upload sends nothing unchanged. Called by scripts/test.sh with the emulator's URL.
"""

import os
import subprocess
import sys
import tempfile
import uuid

import boto3

ENDPOINT = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1")
cloudfront = boto3.client("cloudfront", endpoint_url=ENDPOINT, region_name="us-east-1")
bucket = f"ui-{uuid.uuid4().hex[:12]}"
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="assets/old.js", Body=b"stale")
distribution = cloudfront.create_distribution(DistributionConfig={
    "CallerReference": str(uuid.uuid4()), "Comment": "ui check", "Enabled": True,
    "Origins": {"Quantity": 1, "Items": [{"Id": "ui", "DomainName": f"{bucket}.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
    "DefaultCacheBehavior": {"TargetOriginId": "ui", "ViewerProtocolPolicy": "redirect-to-https", "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
})["Distribution"]["Id"]

build = tempfile.mkdtemp()
os.makedirs(os.path.join(build, "assets"))
files = {"index.html": b"<!doctype html><div id=root></div>", "assets/index-3f2a1b.js": b"console.log(1)", "favicon.ico": b"\x00\x00\x01\x00"}
for key, body in files.items():
    with open(os.path.join(build, key), "wb") as file:
        file.write(body)


def upload(folder):
    command = ["bash", "scripts/upload-ui.sh", folder, "--bucket", bucket, "--distribution", distribution, "--endpoint-url", ENDPOINT]
    return subprocess.run(command, capture_output=True, text=True)


first = upload(build)
assert first.returncode == 0, first.stderr
assert "uploaded 3, unchanged 0, deleted 1" in first.stdout, first.stdout
keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
assert keys == sorted(files), keys
index = s3.head_object(Bucket=bucket, Key="index.html")
assert (index["ContentType"], index["CacheControl"]) == ("text/html", "no-cache"), index
asset = s3.head_object(Bucket=bucket, Key="assets/index-3f2a1b.js")
assert asset["CacheControl"] == "public, max-age=31536000, immutable", asset
assert "javascript" in asset["ContentType"], asset
invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
assert len(invalidations) == 1, invalidations

second = upload(build)
assert "uploaded 0, unchanged 3, deleted 0" in second.stdout, second.stdout
empty = tempfile.mkdtemp()
refused = upload(empty)
assert refused.returncode != 0 and "has no index.html" in refused.stderr, refused.stderr
print("ui upload: mirrored, cached right, invalidated, idempotent")
